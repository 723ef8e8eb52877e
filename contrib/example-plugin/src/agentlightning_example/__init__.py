"""An example agentlightning plugin."""
