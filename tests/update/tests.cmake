# Tests of update (filled in by the update module).
