"""The AgileRL trainer process of the Arena runtime: runs an AgileRL evolutionary run built from the manifest and
speaks the trainer event protocol (runtime/PROTOCOL.md)."""
