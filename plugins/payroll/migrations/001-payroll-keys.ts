import type { MigrationContext } from 'kubiki/plugin';

/**
 * Keys the entity schemas cannot say: one terms record per employee and date, one timesheet per
 * employee and month, one value per parameter, country and date, one calendar per country and year,
 * one regular pay run per period (cancelled ones aside), and the indexes pay runs read by.
 */
export async function up({ trx, schema }: MigrationContext): Promise<void> {
  const q = (name: string) => `"${schema}"."${name}"`;
  await trx.raw(`create unique index payroll_terms_employee_from_uniq on ${q('payroll_terms')} ("employee", "validFrom")`);
  await trx.raw(`create unique index payroll_timesheets_employee_period_uniq on ${q('payroll_timesheets')} ("employee", "period")`);
  await trx.raw(`create unique index payroll_parameters_code_country_from_uniq on ${q('payroll_parameters')} ("code", "country", "validFrom")`);
  await trx.raw(`create unique index payroll_calendars_country_year_uniq on ${q('payroll_calendars')} ("country", "year")`);
  await trx.raw(`create unique index payroll_runs_regular_uniq on ${q('payroll_runs')} ("period") where kind = 'regular' and status <> 'cancelled'`);
  await trx.raw(`create index payroll_payslips_employee_period_idx on ${q('payroll_payslips')} ("employee", "period")`);
  await trx.raw(`create unique index payroll_payslips_run_employee_uniq on ${q('payroll_payslips')} ("run", "employee")`);
  await trx.raw(`create unique index payroll_history_employee_month_uniq on ${q('payroll_history')} ("employee", "month")`);
}
