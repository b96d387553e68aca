# See ../__init__.py: dc09-spt imports AES at module load; plain mode never calls it.
AES = None
