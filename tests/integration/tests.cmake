# Tests of integration (filled in by the integration module).
