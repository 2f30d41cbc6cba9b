"""The rates file: CNY per USD by month, every problem found in one pass with its line."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portflow.domain.rates import Rate, month_runs, months_text, parse_rates


def parse(text: str):
    return parse_rates(text.encode())


def test_a_good_file_gives_each_month_its_rate_and_source_in_month_order():
    parsed = parse('month,rate,source\n2024-02,7.1,PBOC\n2024-01,7.2570,"Xinhua, implied"\n')
    assert parsed.problems == []
    assert parsed.rates == {
        "2024-01": Rate(Decimal("7.2570"), "Xinhua, implied"),
        "2024-02": Rate(Decimal("7.1"), "PBOC"),
    }
    assert parsed.months == ["2024-01", "2024-02"]


def test_the_rate_keeps_the_places_it_was_written_with():
    parsed = parse("month,rate,source\n2024-01,7.2570,x\n")
    assert parsed.rates["2024-01"].as_json() == {"rate": "7.2570", "source": "x"}


def test_a_bom_crlf_blank_lines_spaces_and_a_capitalised_header_are_fine():
    data = "\ufeffMonth, Rate ,Source\r\n\r\n2024-01, 7.25 , PBOC \r\n,,\r\n".encode()
    parsed = parse_rates(data)
    assert parsed.problems == []
    assert parsed.rates == {"2024-01": Rate(Decimal("7.25"), "PBOC")}


def test_every_bad_line_is_named_with_its_line_number_in_one_pass():
    parsed = parse(
        "month,rate,source\n"
        "2024-13,7.2,a\n"  # 2: no such month
        "2024-01,-7.2,a\n"  # 3: not a positive decimal
        "2024-02,7.1234567,a\n"  # 4: too many places
        "2024-03,0.1378,a\n"  # 5: dollars per yuan
        "2024-04,725.70,a\n"  # 6: per 100 dollars
        "2024-05,7.2,\n"  # 7: no source
        "2024-06,7.2\n"  # 8: a field missing
        "2024-07,7.2,a\n"
        "2024-07,7.3,b\n"  # 10: a month again
        "1899-12,nan,\n"
    )  # 11: three problems
    assert [line for line, _ in parsed.problems] == [2, 3, 4, 5, 6, 7, 8, 10, 11, 11, 11]
    said = dict(parsed.problems[:8])
    assert "'2024-13' is not a month" in said[2]
    assert "'-7.2' is not a decimal number" in said[3]
    assert "more than 6 decimal places" in said[4]
    assert "dollars per yuan" in said[5]
    assert "'725.70'" in said[6]
    assert "source is empty" in said[7]
    assert "2 field(s), expected 3" in said[8]
    assert "2024-07 is given again (first on line 9)" in said[10]
    assert [p for line, p in parsed.problems if line == 11] == [
        "month '1899-12' is before 1900",
        "rate 'nan' is not a decimal number like 7.2570",
        "source is empty: say where the rate comes from",
    ]


@pytest.mark.parametrize("text", ["1e1", "7,2", "+7.2", "7.", ".5", "Infinity", "7.2 CNY", ""])
def test_a_rate_must_be_a_plain_decimal(text):
    parsed = parse(f'month,rate,source\n2024-01,"{text}",a\n')
    assert parsed.rates == {}
    assert len(parsed.problems) == 1
    assert "is not a decimal number" in parsed.problems[0][1]


def test_the_bounds_are_inclusive():
    parsed = parse("month,rate,source\n2024-01,1,a\n2024-02,20.000000,a\n")
    assert parsed.problems == []
    assert len(parsed.rates) == 2


def test_a_wrong_header_stops_the_reading_at_line_one():
    parsed = parse("month;rate;source\n2024-01;7.2;a\n")
    assert parsed.rates == {}
    assert parsed.problems == [(1, "the header must be month,rate,source, not 'month;rate;source'")]


def test_a_header_after_blank_lines_is_named_on_its_own_line():
    assert parse("\n\nrate,month,source\n").problems[0][0] == 3


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "the file is empty"),
        (b"\r\n  \r\n", "the file is empty"),
        (b"month,rate,source\n", "no rates after the header"),
        (b"\xff\xfemonth,rate,source\n", "not UTF-8 text"),
        (b"month,rate,source\n2024-01,7.2,a\0\n", "a NUL character"),
    ],
)
def test_a_file_without_rates_says_why(data, said):
    parsed = parse_rates(data)
    assert parsed.rates == {}
    assert len(parsed.problems) == 1
    assert said in parsed.problems[0][1]


def test_a_nul_is_named_on_its_line():
    assert parse_rates(b"month,rate,source\n2024-01,7.2,a\n\0").problems[0][0] == 3


def test_a_source_with_control_characters_or_too_long_is_refused():
    parsed = parse('month,rate,source\n2024-01,7.2,"a\x07b"\n2024-02,7.2,' + "s" * 201 + "\n")
    assert [line for line, _ in parsed.problems] == [2, 3]


def test_a_field_beyond_the_csv_limit_is_a_problem_not_an_exception():
    parsed = parse('month,rate,source\n2024-01,7.2,"' + "x" * 200_000 + '"\n')
    assert parsed.rates == {}
    assert "not CSV" in parsed.problems[0][1]


@given(st.binary(max_size=300))
def test_any_bytes_give_rates_or_problems_never_an_exception(data):
    parsed = parse_rates(b"month,rate,source\n" + data)
    assert all(isinstance(line, int) and line >= 1 for line, _ in parsed.problems)
    assert all(Decimal(1) <= r.rate <= Decimal(20) for r in parsed.rates.values())


def test_months_are_told_as_runs_of_consecutive_months():
    assert month_runs(["2023-11", "2023-12", "2024-01", "2024-03"]) == "2023-11 to 2024-01, 2024-03"
    assert months_text(["2024-06"]) == "1 month (2024-06)"
    assert months_text([]) == "0 months ()"


def test_digits_of_other_scripts_are_not_a_month_or_a_rate():
    parsed = parse("month,rate,source\n２０２４-01,7.2,a\n2024-01,٧.٢,a\n")
    assert [line for line, _ in parsed.problems] == [2, 3]
    assert parsed.rates == {}
