# Stand-in for pycrypto, which dc09-spt imports but which does not build on Python 3.11.
# The vakt tests drive dc09-spt in plain (unencrypted) mode only, so AES is never used.
