"""The agent's VM runtime: typed VM spec -> domain XML -> libvirt -> read-back of live devices."""
