"""``python -m recllm``: the same as the ``recllm`` command."""

from recllm.cli import main

raise SystemExit(main())
