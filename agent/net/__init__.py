"""Host networking as the agent sees it: read from the kernel, changed in transactions."""
