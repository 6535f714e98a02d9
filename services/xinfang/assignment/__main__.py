from xinfang.assignment.app import SPEC
from xinfang.core.runtime import run

if __name__ == "__main__":
    run(SPEC)
