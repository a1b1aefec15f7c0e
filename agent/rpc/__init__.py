"""The agent's gRPC services: network.py (AgentService and the server), vm.py (VmAgentService), guard.py."""
