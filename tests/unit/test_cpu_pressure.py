"""CpuPressure (service/core/cpu_pressure.py): Linux's CPU pressure, read at most once a second."""

from __future__ import annotations

from pathlib import Path

from service.core.cpu_pressure import PSI_FILES, CpuPressure, stalled_microseconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write_psi(path: Path, stalled_us: int) -> None:
    path.write_text(
        f"some avg10=0.00 avg60=0.00 avg300=0.00 total={stalled_us}\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )


def test_short_when_tasks_waited_for_a_core_over_30_percent_of_the_last_second(
    tmp_path: Path,
) -> None:
    psi, clock = tmp_path / "cpu", Clock()
    write_psi(psi, 1_000_000)
    pressure = CpuPressure([psi], clock)
    assert not pressure.short()
    clock.now += 1
    write_psi(psi, 1_400_000)
    assert pressure.short()
    clock.now += 2
    write_psi(psi, 1_500_000)
    assert not pressure.short()


def test_the_file_is_read_at_most_once_a_second_and_losing_it_means_no_psi(tmp_path: Path) -> None:
    psi, clock = tmp_path / "cpu", Clock()
    write_psi(psi, 0)
    pressure = CpuPressure([psi], clock)
    clock.now += 0.5
    write_psi(psi, 500_000)
    assert not pressure.short()
    clock.now += 0.5
    assert pressure.short()
    psi.unlink()
    clock.now += 0.5
    assert pressure.short()
    clock.now += 0.5
    assert not pressure.short()


def test_the_first_readable_file_is_used(tmp_path: Path) -> None:
    missing, garbled, psi, clock = tmp_path / "no", tmp_path / "bad", tmp_path / "cpu", Clock()
    garbled.write_text("not pressure\n")
    write_psi(psi, 0)
    pressure = CpuPressure([missing, garbled, psi], clock)
    clock.now += 1
    write_psi(psi, 900_000)
    assert pressure.short()


def test_without_psi_the_machine_is_never_short(tmp_path: Path) -> None:
    clock = Clock()
    pressure = CpuPressure([tmp_path / "none"], clock)
    clock.now += 5
    assert not pressure.short()


def test_this_machine_s_psi_parses_when_it_has_one() -> None:
    for path in PSI_FILES:
        if path.exists():
            assert stalled_microseconds(path) >= 0
