from xinfang.core.runtime import run
from xinfang.intake.app import SPEC

if __name__ == "__main__":
    run(SPEC)
