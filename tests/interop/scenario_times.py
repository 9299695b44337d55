"""scenario_times.py: the table of every test's outcome and duration that
tests/interop and tests/federation print at the end of a run, plus the
figures a test reports (request.node.user_properties, name "figures").
Both work under pytest-xdist: reports reach the controlling process."""
import time


class ScenarioTimes:
    def __init__(self, title, figures_title=None):
        self.title, self.figures_title = title, figures_title
        self.times, self.figures = [], []
        self.start = time.monotonic()

    def record(self, report):
        """From pytest_runtest_logreport."""
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.times.append((report.nodeid.split("::", 1)[-1], report.outcome, report.duration))
        if report.when == "call" and self.figures_title:
            self.figures.extend(v for k, v in report.user_properties if k == "figures")

    def summary(self, tr):
        """From pytest_terminal_summary."""
        if not self.times:
            return
        tr.section(self.title)
        width = max(len(n) for n, _, _ in self.times)
        for name, outcome, secs in self.times:
            tr.write_line(f"{name:<{width}}  {outcome:<7}  {secs:7.2f} s")
        tr.write_line(f"{'total':<{width}}  {'':<7}  {sum(s for _, _, s in self.times):7.2f} s  "
                      f"(wall {time.monotonic() - self.start:.1f} s)")
        if self.figures:
            tr.section(self.figures_title)
            for text in self.figures:
                for line in text.splitlines():
                    tr.write_line(line)
