"""Tests of the hack/ tooling (a package so test module names stay unique across tests/)."""
