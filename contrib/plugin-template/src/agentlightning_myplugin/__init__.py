"""agentlightning-myplugin."""
