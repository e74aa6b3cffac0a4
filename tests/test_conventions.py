"""How a file's conventions are decided from its source, and what each means for a run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from autotrader_desktop.conventions import ConventionsError, detect
from autotrader_desktop.enums import Conventions

LEGACY_IMPORTS = "from database.db_manager import get_data_for_algorithm\n"
MODERN_IMPORTS = "from autotrader_desktop.api import get_data_for_algorithm\n"
CLASS = "class Algorithm:\n    pass\n"


@pytest.mark.parametrize(
    "source, expected",
    [
        (LEGACY_IMPORTS + CLASS, Conventions.LEGACY),
        ("import system_databse.card_calculations as cards\n" + CLASS, Conventions.LEGACY),
        ("def f():\n    from system_databse.system_db_manager import get_transactions\n", "legacy"),
        (MODERN_IMPORTS + CLASS, Conventions.MODERN),
        ("import math\nimport numpy\n" + CLASS, Conventions.MODERN),
        # No imports at all: today's conventions (the documented default).
        (CLASS, Conventions.MODERN),
        # A declaration wins over what the imports imply, both ways.
        ('AUTOTRADER_CONVENTIONS = "modern"\n' + LEGACY_IMPORTS + CLASS, Conventions.MODERN),
        ("AUTOTRADER_CONVENTIONS = 'Legacy'\n" + MODERN_IMPORTS + CLASS, Conventions.LEGACY),
        ('AUTOTRADER_CONVENTIONS: str = "legacy"\n' + CLASS, Conventions.LEGACY),
        # A string that merely mentions the old modules is not an import.
        ('NOTE = "from database.db_manager import x"\n' + CLASS, Conventions.MODERN),
    ],
)
def test_detected_from_the_source(source, expected):
    assert detect(source) == expected


def test_a_declaration_that_names_no_conventions_is_refused_with_its_line():
    with pytest.raises(ConventionsError, match=r"must be \"legacy\" or \"modern\" \(line 2\)"):
        detect("import math\nAUTOTRADER_CONVENTIONS = 'old'\n" + CLASS)


def test_legacy_time_is_the_web_autotraders_string_and_modern_the_datetime():
    at = datetime(2024, 3, 15, 20, 2, 2, tzinfo=UTC)
    assert Conventions.LEGACY.current_time(at) == "2024-03-15T20:02:02Z"
    assert Conventions.MODERN.current_time(at) is at
    assert Conventions.LEGACY.fresh_object_per_run
    assert not Conventions.MODERN.fresh_object_per_run
