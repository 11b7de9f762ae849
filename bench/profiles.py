"""Where the CPU goes. The server's, from the CPU profiles it serves (`GET /debug/pprof/profile`,
`PROFILING=true`): pprof's protobuf read here with a decoder of its wire format (the few fields
of profile.proto a summary needs), so nothing but the standard library is involved. Postgres's,
from perf's samples of its processes as inferno folds them: one line per distinct stack."""

import collections
import re

# profile.proto's field numbers.
PROFILE_SAMPLE_TYPE, PROFILE_SAMPLE, PROFILE_LOCATION, PROFILE_FUNCTION, PROFILE_STRINGS = 1, 2, 4, 5, 6
PROFILE_PERIOD = 12
VALUE_TYPE_UNIT = 2
SAMPLE_LOCATIONS, SAMPLE_VALUES = 1, 2
LOCATION_ID, LOCATION_LINE = 1, 4
LINE_FUNCTION = 1
FUNCTION_ID, FUNCTION_NAME = 1, 2


def _varint(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data):
    """(field number, value) of a message: an int for varints, bytes for length-delimited."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            length, at = _varint(data, at)
            value, at = data[at:at + length], at + length
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        else:
            raise ValueError(f"wire type {wire} is not in profile.proto")
        yield number, value


def _ints(value):
    """A repeated integer field: packed (bytes) or one varint."""
    if isinstance(value, int):
        return [value]
    numbers, at = [], 0
    while at < len(value):
        number, at = _varint(value, at)
        numbers.append(number)
    return numbers


def stacks(profile):
    """[(function names, leaf first), sample count] of a pprof protobuf. A profile that gives CPU
    time (pprof-rs: nanoseconds, a period's worth per sample) has it divided by the period."""
    strings, functions, locations, samples = [], {}, {}, []
    unit, period = None, 0
    for number, value in _fields(profile):
        if number == PROFILE_SAMPLE_TYPE and unit is None:
            unit = dict(_fields(value)).get(VALUE_TYPE_UNIT, 0)
        elif number == PROFILE_PERIOD:
            period = value
        elif number == PROFILE_STRINGS:
            strings.append(value.decode(errors="replace"))
        elif number == PROFILE_FUNCTION:
            fields = dict(_fields(value))
            functions[fields.get(FUNCTION_ID, 0)] = fields.get(FUNCTION_NAME, 0)
        elif number == PROFILE_LOCATION:
            location, names = 0, []
            for field, item in _fields(value):
                if field == LOCATION_ID:
                    location = item
                elif field == LOCATION_LINE:
                    names.append(dict(_fields(item)).get(LINE_FUNCTION, 0))
            # A location's lines run from the innermost inlined function out.
            locations[location] = names
        elif number == PROFILE_SAMPLE:
            ids, values = [], []
            for field, item in _fields(value):
                if field == SAMPLE_LOCATIONS:
                    ids += _ints(item)
                elif field == SAMPLE_VALUES:
                    values += _ints(item)
            samples.append((ids, values[0] if values else 1))
    per_sample = period if unit is not None and strings[unit] == "nanoseconds" and period else 1
    result = []
    for ids, count in samples:
        names = [strings[functions.get(function, 0)] for location in ids for function in locations.get(location, [])]
        result.append((names, round(count / per_sample)))
    return result


def crate(function):
    """The crate a demangled Rust name belongs to (`<T as Trait>::f` counts for T's crate); C
    (libc, SQLite, the kernel's entry points) has no paths."""
    if "::" not in function:
        return "[C: libc, SQLite, system calls]"
    name = re.sub(r"^(dyn |mut |impl )", "", function.lstrip("<&*"))
    head = re.split(r"::|<| as ", name, maxsplit=1)[0]
    if re.fullmatch(r"[a-z_][a-z0-9_]*", head):
        return head
    # `<T as sqlx_core::encode::Encode>::size_hint`: a generic type, so the trait's crate.
    trait = re.search(r" as ([a-z_][a-z0-9_]*)::", function)
    return trait.group(1) if trait else "[unknown]"


OURS = ("bank_api", "bank_core")


def summary(profile, top=12):
    """The share of samples spent in each crate's own code (the leaf frame's crate), largest first,
    and by the innermost function of this project (`bank_api`, `bank_core`) on each stack: the
    call of ours that the sampled work was done for, whatever library did it."""
    all_stacks = stacks(profile)
    total = sum(count for _, count in all_stacks) or 1
    by_crate, ours = collections.Counter(), collections.Counter()
    for names, count in all_stacks:
        by_crate[crate(names[0]) if names else "[unknown]"] += count
        innermost = next((name for name in names if crate(name) in OURS), None)
        ours[re.sub(r"::\{\{closure\}\}.*$", "", innermost) if innermost else
             "[no function of ours on the stack: the runtime, the HTTP server]"] += count
    return {
        "samples": total,
        "crates": [(name, count / total) for name, count in by_crate.most_common(top)],
        "ours": [(name, count / total) for name, count in ours.most_common(top)],
    }


# Postgres's own functions that say what its time went to, each with what it does for the ledger.
# Postgres 15's exported names: static functions have none in Debian's stripped build.
POSTGRES_WORK = (
    ("btinsert", "index entries: each ledger row's in its two indexes, each write id's in its own"),
    ("SPI_execute_snapshot", "foreign-key checks: each ledger row's account looked up and key-share locked"),
    ("standard_ExecutorStart", "starting an executor: for each statement, and for each foreign-key check"),
    ("heap_insert", "new rows: ledger rows and write ids"),
    ("XLogInsert", "write-ahead log records"),
    ("heap_update", "balance updates"),
    ("heap_lock_tuple", "row locks: accounts locked for the group, and the foreign-key checks' key-share locks"),
    ("MultiExecHash", "hash joins: a group's accounts read whole to judge and lock them"),
    ("nextval_internal", "ledger row ids"),
    ("CommitTransactionCommand", "commits"),
)


def postgres(folded):
    """Each of `POSTGRES_WORK`'s functions' share of Postgres's sampled CPU, from inferno's folded
    stacks (`frame;frame;... weight` per line): every sample with the function anywhere on its
    stack counts, so a share includes what the function calls, and shares overlap."""
    total, within = 0, collections.Counter()
    for line in folded.splitlines():
        stack, _, weight = line.rpartition(" ")
        frames = set(stack.split(";"))
        total += int(weight)
        within.update({function: int(weight) for function, _ in POSTGRES_WORK if function in frames})
    return {
        "cpu_ms": total / 1e6,  # perf's cpu-clock weights are nanoseconds
        "work": [(function, doing, within[function] / (total or 1)) for function, doing in POSTGRES_WORK],
    }
