"""MAC pools without I/O: range arithmetic and the in-memory allocator (virtfleet.macaddr reads addresses).

The service layer persists what this package decides; everything here is pure
so that property tests can drive it against a simple model.
"""
