"""The manager's side of its agents: channels and calls (clients), and every host's live state (monitor)."""
from .clients import AgentClients, agent_error
from .monitor import HostMonitor
from .states import HostState

__all__ = ["AgentClients", "HostMonitor", "HostState", "agent_error"]
