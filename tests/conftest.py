import os
import tempfile

# generated modules of the test run go to a private cache unless the caller chose one
os.environ.setdefault("SYMFIELD_CACHE", os.path.join(tempfile.gettempdir(), "symfield-test-cache"))
