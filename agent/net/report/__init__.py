"""What the host has: its network state, its kernel's capabilities, and a watcher that follows changes."""
