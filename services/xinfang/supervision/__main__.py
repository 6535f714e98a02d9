from xinfang.core.runtime import run
from xinfang.supervision.app import SPEC

if __name__ == "__main__":
    run(SPEC)
