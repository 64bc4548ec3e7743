"""Add checksums.json to an export written before exports carried checksums (or after a
deliberate edit). Only run it on an export you trust: loading verifies against these sums.

  python tools/checksum_export.py assets/moving_shapes_base [more exports ...]
"""

import sys

from lumiere_jax.train import checkpoint


def main(paths):
    if not paths:
        raise SystemExit(__doc__)
    for path in paths:
        if not checkpoint.is_export(path):
            raise SystemExit(f"{path} is not an export (config.json + params/)")
        sums = checkpoint.write_checksums(path)
        print(f"{path}: {len(sums)} files")


if __name__ == "__main__":
    main(sys.argv[1:])
