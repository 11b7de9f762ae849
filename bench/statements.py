"""What the API really sends, read from Postgres's own log, turned into a pgbench script.

For each route, the benchmark switches `log_statement = 'all'` on for a short burst of requests
sent one at a time (never during a measurement: logging costs Postgres), then reads the log:
every statement with its parameters and when it was logged. What a request sent is every
statement logged while it was in flight; the route's statements are what most of its requests
sent (the first may read the user its token names, which the API then remembers). pgbench runs
them with `-M prepared`: each parameter becomes a pgbench variable (`:pN`, sent as a parameter,
cast to the type the API sent it as), fixed where every request sent the same value and drawn at
random from the range the requests used where it varied; times become `now()` and write ids a
new time-ordered UUID (version 7, `WRITE_ID`), as the API makes one per request. An array of many
(a batch's items, one element each) keeps its length: its numbers are drawn from the range the
requests used, each element on its own, and its write ids are new. So the script cannot drift
from the code: it is whatever this build sent in this run."""

import collections
import datetime
import re
from dataclasses import dataclass, field

LINE = re.compile(r"^(?P<time>\S+ \S+) \S+ \[\d+\] (?P<kind>LOG|DETAIL):  (?P<text>.*)$")
EXECUTE = re.compile(r"^(?:execute [^:]+|statement): (?P<sql>.*)$")
PARAMETER = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d")
INTEGER = re.compile(r"^-?\d+$")
INTEGER_ARRAY = re.compile(r"^\{-?\d+\}$")
BOOLEAN_ARRAY = re.compile(r"^\{[tf]\}$")
UUID_ARRAY = re.compile(r"^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$")
TEXT_ARRAY = re.compile(r'^\{(?:""|[^,{}"]*)\}$')
# An array of many elements, none quoted but for empty text.
ARRAY = re.compile(r'^\{(?:""|[^,{}"]*)(?:,(?:""|[^,{}"]*))+\}$')
# A write id as the API makes it (Postgres 15 has no uuidv7()): the milliseconds since the epoch,
# then random bits, with version 7's nibble. Random ids would cost pgbench what the API no longer
# pays, a random page of the write ids' index per write.
WRITE_ID = ("encode(set_byte(overlay(uuid_send(gen_random_uuid()) PLACING "
            "substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::int8) FROM 3) FROM 1 FOR 6), "
            "6, (get_byte(uuid_send(gen_random_uuid()), 6) & 15) | 112), 'hex')::uuid")
# The log's times have milliseconds: a statement logged this close to a request's window is its.
SLACK = 0.002


@dataclass
class Statement:
    at: float  # when Postgres logged it, seconds since the epoch
    sql: str
    parameters: dict = field(default_factory=dict)  # position -> text value, None for NULL


def parse(log_text):
    """The statements in a Postgres log (`log_line_prefix = '%m [%p] '`), in order."""
    found, continues = [], False
    for line in log_text.splitlines():
        match = LINE.match(line)
        if not match:
            # A statement written on several lines goes on without a prefix.
            if continues and found:
                found[-1].sql += "\n" + line
            continue
        continues = False
        if match["kind"] == "LOG":
            executed = EXECUTE.match(match["text"])
            if executed:
                at = datetime.datetime.fromisoformat(match["time"]).replace(tzinfo=datetime.UTC).timestamp()
                found.append(Statement(at, executed["sql"].strip()))
                continues = True
        elif match["text"].lower().startswith("parameters:") and found:
            for position, value in PARAMETER.findall(match["text"]):
                found[-1].parameters[int(position)] = None if value == "NULL" else value[1:-1].replace("''", "'")
    return found


def script(log_text, requests):
    """The pgbench script of what most requests sent, and how many sent it. `requests` is each
    request's (start, end), in seconds since the epoch; they must not overlap."""
    logged = parse(log_text)
    by_shape = collections.defaultdict(list)
    for start, end in requests:
        sent = [statement for statement in logged if start - SLACK <= statement.at <= end + SLACK]
        for statement in sent:
            statement.sql = statement.sql.strip().rstrip(";")
        if sent:
            by_shape[tuple(statement.sql for statement in sent)].append(sent)
    if not by_shape:
        raise ValueError("the log holds no statement of these requests: was log_statement on?")
    shape, samples = max(by_shape.items(), key=lambda item: len(item[1]))
    settings, lines = [], []
    # A parameter that carried the same value as an earlier one in every request (an account id
    # bounding a range from both sides) is that same variable.
    variables = {}
    for index, sql in enumerate(shape):
        values = collections.defaultdict(list)
        for sent in samples:
            for position, value in sent[index].parameters.items():
                values[position].append(value)
        for position in sorted(values, reverse=True):  # $10 before $1
            seen = tuple(values[position])
            known = seen in variables
            variable = variables.setdefault(seen, f"s{index}p{position}")
            replacement, setting = _parameter(variable, values[position])
            sql = re.sub(rf"\${position}(?!\d)", replacement, sql)
            if setting and not known:
                settings.append(setting)
        lines.append(sql + ";")
    return "\n".join(settings + lines) + "\n", len(samples)


def _parameter(variable, values):
    """What a parameter becomes in the script: SQL to put in its place, and a `\\set` if any."""
    present = [value for value in values if value is not None]
    if not present:
        return "NULL", None
    if all(UUID.match(value) for value in present):
        return WRITE_ID, None
    if all(TIMESTAMP.match(value) for value in present):
        return "now()", None
    if all(INTEGER.match(value) for value in present):
        return f":{variable}::int8", _numbers(variable, present)
    # A request sent alone is a group (or a coalesced read) of one: arrays of one element, typed
    # as the API sent them, since a bare literal has no type where a function is polymorphic.
    if all(UUID_ARRAY.match(value) for value in present):
        return f"ARRAY[{WRITE_ID}]", None
    if all(INTEGER_ARRAY.match(value) for value in present):
        if len(set(present)) == 1:
            return f"'{present[0]}'::int8[]", None
        return f"ARRAY[:{variable}::int8]", _numbers(variable, [value[1:-1] for value in present])
    if len(set(present)) == 1 and BOOLEAN_ARRAY.match(present[0]):
        return f"'{present[0]}'::bool[]", None
    if len(set(present)) == 1 and TEXT_ARRAY.match(present[0]):
        return "'" + present[0].replace("'", "''") + "'::text[]", None
    if len(set(present)) == 1:
        return "'" + present[0].replace("'", "''") + "'", None
    if all(ARRAY.match(value) for value in present):
        return _drawn_array(present), None
    raise ValueError(f"a parameter that varies and is not a number, id or time: {present[:3]}")


def _drawn_array(present):
    """An array of many that varied: as long as the requests sent it (each request the same
    length), with new write ids, or numbers each drawn from the range the requests' elements
    used."""
    arrays = [value[1:-1].split(",") for value in present]
    lengths = {len(elements) for elements in arrays}
    if len(lengths) != 1:
        raise ValueError(f"an array whose length varies: {sorted(lengths)}")
    elements = [element for array in arrays for element in array]
    each = f"FROM generate_series(1, {lengths.pop()}))"
    if all(UUID.match(element) for element in elements):
        return f"ARRAY(SELECT {WRITE_ID} {each}"
    if all(INTEGER.match(element) for element in elements):
        numbers = [int(element) for element in elements]
        low, high = min(numbers), max(numbers)
        return f"ARRAY(SELECT ({low} + floor(random() * {high - low + 1}))::int8 {each}"
    raise ValueError(f"an array that varies and holds neither numbers nor ids: {present[0][:80]}")


def _numbers(variable, present):
    """A `\\set` of the numbers a parameter carried: the one value, or a draw from their range."""
    numbers = [int(value) for value in present]
    low, high = min(numbers), max(numbers)
    return f"\\set {variable} {low}" if low == high else f"\\set {variable} random({low}, {high})"
