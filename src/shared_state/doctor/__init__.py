"""`shared-state doctor`: probe each configured upstream with the configuration in force
and say, one line per check, what works and, for what does not, what to change."""

from shared_state.doctor.report import Check, Report, render_json, render_text
from shared_state.doctor.runner import diagnose

__all__ = ["Check", "Report", "diagnose", "render_json", "render_text"]
