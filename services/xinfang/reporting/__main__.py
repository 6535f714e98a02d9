from xinfang.core.runtime import run
from xinfang.reporting.app import SPEC

if __name__ == "__main__":
    run(SPEC)
