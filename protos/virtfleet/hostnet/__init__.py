"""How a network lies on a host, judged the same way by the agent, the manager and the audit."""
