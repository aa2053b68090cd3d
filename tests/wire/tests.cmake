# Tests of wire (filled in by the wire module).
