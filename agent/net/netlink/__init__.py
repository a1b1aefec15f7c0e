"""Netlink bytes: sockets in a namespace, kernel constants, dump decoding, iproute2's words.

The bottom layer of agent/net: nothing here imports report/ or apply/.
"""
