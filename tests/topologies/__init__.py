"""Real Redis topologies (cluster, sentinel, Valkey) and the tests of core/connection.py against them."""
