"""Host networking as the agent sees it, in layers that import downward only:

netlink/  sockets in a namespace, kernel constants, dump decoding, iproute2's words
report/   the host's state, its kernel's capabilities, the watcher that follows changes
apply/    typed reversible operations, the batch writer, the journaled transaction
hostnet/  setupNetworks (and the management network): canonicalize, validate, plan, apply, verify, commit
"""
