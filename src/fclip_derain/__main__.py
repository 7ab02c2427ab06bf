"""`python -m fclip_derain ...` (used by `torchrun -m fclip_derain train ...`)."""
import sys

from .cli import main

sys.exit(main())
