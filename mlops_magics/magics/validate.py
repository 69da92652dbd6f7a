"""``%validate CURRENT REFERENCE``: parse, validate, display. Thin by design.

Nothing heavy is imported here: pandas and the checks load on first use.
"""

from __future__ import annotations


from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._shell import publish, user_data


@magics_class
class ValidateMagics(Magics):
    """Data contracts: new data checked against a reference's columns, ranges and categories."""

    @no_var_expand
    @magic_arguments()
    @argument("current", help="The data to check: a variable name, or a CSV / Parquet file.")
    @argument("reference", help="What it must look like: a variable (DataFrame, Profile, Contract), "
                                "runs:/<run_id>/<data name>, a profile .json, a data file or a contract .yaml.")
    @argument("--tolerance", "-t", type=float,
              help="Share of rows allowed outside a range or with unseen categories, and the missing-rate "
                   "rise allowed (default 0.01, or the contract's).")
    @argument("--save-contract", metavar="PATH", help="Also write the contract used as editable YAML at PATH.")
    @line_magic
    def validate(self, line: str = ""):
        """Check CURRENT against REFERENCE: missing and extra columns, dtype kinds, values
        outside the reference's range, unseen categories, missing-rate rises, row counts.

        ``%validate today_df runs:/<run id>/X_train``. Shows the failed checks and the
        verdict; for the report object (``.passed``, ``.table``, ``.log()``) use
        ``mm.validate``. ``--save-contract contract.yaml`` writes what was checked, to edit
        and to give as REFERENCE next time.
        """
        try:
            args = parse_argstring(self.validate, line)
        except UsageError as exc:
            raise UsageError(f"%validate: {exc}") from None
        current, reference = self._data(args.current), self._data(args.reference)
        from ..monitoring.validate import validate

        report = validate(current, reference, tolerance=args.tolerance)
        if args.save_contract:
            report.save_contract(args.save_contract)
        publish(self.shell, report)

    def _data(self, name: str):
        return user_data(self.shell, name)
