"""Small helpers shared by the core and the plugins (each module imports its heavy dependencies lazily)."""
