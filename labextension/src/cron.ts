/**
 * Five-field cron (minute hour day-of-month month day-of-week, or a macro such as @daily):
 * parse it, say it in plain words, and list the next times in an IANA time zone.
 *
 * The server (croniter) stays the judge; this exists so that the dialog can show the
 * reading and the next three times while the user types, with no round trip.
 */

export interface CronField {
  values: Set<number>;
  any: boolean; // written as '*' (matters for the day-of-month / day-of-week OR rule)
  text: string;
}

export interface Cron {
  minute: CronField;
  hour: CronField;
  dom: CronField;
  month: CronField;
  dow: CronField;
  text: string;
}

export class CronError extends Error {}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *'
};
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];
const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const FIELDS: [string, number, number, string[] | null][] = [
  ['minute', 0, 59, null],
  ['hour', 0, 23, null],
  ['day of month', 1, 31, null],
  ['month', 1, 12, MONTHS],
  ['day of week', 0, 7, DAYS]
];

function atom(raw: string, field: number): number {
  const [name, lo, hi, names] = FIELDS[field];
  const low = raw.toLowerCase();
  let n: number;
  if (names && names.includes(low)) {
    n = names.indexOf(low) + (field === 3 ? 1 : 0);
  } else if (/^\d+$/.test(raw)) {
    n = parseInt(raw, 10);
  } else {
    throw new CronError(`'${raw}' is not a valid ${name}`);
  }
  if (n < lo || n > hi) {
    throw new CronError(`${raw} is out of range for the ${name} (${lo}-${hi})`);
  }
  return n;
}

function parseField(text: string, field: number): CronField {
  const [name, lo, hi] = FIELDS[field];
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined || range === '' || (stepText !== undefined && !/^\d+$/.test(stepText))) {
      throw new CronError(`'${text}' is not a valid ${name}`);
    }
    const step = stepText === undefined ? 1 : parseInt(stepText, 10);
    if (step < 1) {
      throw new CronError(`'${text}': a step must be at least 1`);
    }
    let start: number, end: number;
    if (range === '*') {
      [start, end] = [lo, field === 4 ? 6 : hi];
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (more !== undefined) {
        throw new CronError(`'${text}' is not a valid ${name}`);
      }
      [start, end] = [atom(a, field), atom(b, field)];
      if (end < start) {
        throw new CronError(`'${range}' runs backwards in the ${name}`);
      }
    } else {
      start = atom(range, field);
      end = stepText === undefined ? start : (field === 4 ? 6 : hi);
    }
    for (let v = start; v <= end; v += step) {
      values.add(field === 4 && v === 7 ? 0 : v);
    }
  }
  return { values, any: text === '*' || text === '?', text };
}

/** The expression parsed, or a CronError whose message says what is wrong. */
export function parseCron(expr: string): Cron {
  let text = expr.trim().split(/\s+/).join(' ');
  if (text === '') {
    throw new CronError('a cron expression is needed, e.g. 0 6 * * mon-fri');
  }
  if (text.startsWith('@')) {
    const macro = MACROS[text.toLowerCase()];
    if (!macro) {
      throw new CronError(`'${text}' is not a cron macro (@hourly, @daily, @weekly, @monthly, @yearly)`);
    }
    text = macro;
  }
  const parts = text.split(' ');
  if (parts.length !== 5) {
    const hint = parts.length === 6 || parts.length === 7 ? ' (seconds and years are not supported)' : '';
    throw new CronError(`it has ${parts.length} fields, cron wants 5${hint}: minute hour day-of-month month day-of-week`);
  }
  const f = parts.map((p, i) => parseField(p.replace('?', '*'), i));
  return { minute: f[0], hour: f[1], dom: f[2], month: f[3], dow: f[4], text: expr.trim() };
}

// -- plain words -------------------------------------------------------------------------------
const pad = (n: number) => String(n).padStart(2, '0');

function list(words: string[]): string {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** Consecutive runs of sorted numbers, shown as 'a through b' when three or more long. */
function spans(sorted: number[], name: (n: number) => string): string {
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) {
      j++;
    }
    if (j - i >= 2) {
      out.push(`${name(sorted[i])} through ${name(sorted[j])}`);
    } else {
      for (let k = i; k <= j; k++) {
        out.push(name(sorted[k]));
      }
    }
    i = j + 1;
  }
  return list(out);
}

const sortedOf = (f: CronField) => [...f.values].sort((a, b) => a - b);

function stepOf(f: CronField): number | null {
  const m = /^\*\/(\d+)$/.exec(f.text);
  return m ? parseInt(m[1], 10) : null;
}

function timeWords(c: Cron): string {
  const mins = sortedOf(c.minute);
  const hours = sortedOf(c.hour);
  const minuteStep = stepOf(c.minute);
  if (c.minute.any && c.hour.any) {
    return 'Every minute';
  }
  if (minuteStep && c.hour.any) {
    return `Every ${minuteStep} minutes`;
  }
  if (c.hour.any) {
    return mins.length === 1 && mins[0] === 0 ? 'Every hour, on the hour'
      : `Every hour at minute ${list(mins.map(String))}`;
  }
  const contiguous = hours.length > 1 && hours[hours.length - 1] - hours[0] === hours.length - 1;
  if ((minuteStep || c.minute.any) && contiguous) {
    const every = minuteStep ? `Every ${minuteStep} minutes` : 'Every minute';
    return `${every} between ${pad(hours[0])}:00 and ${pad(hours[hours.length - 1])}:59`;
  }
  const hourStep = stepOf(c.hour);
  if (hourStep && mins.length === 1) {
    return `Every ${hourStep} hours at minute ${mins[0]}`;
  }
  if (c.minute.any) {
    return `Every minute of hour ${list(hours.map(pad))}`;
  }
  if (mins.length * hours.length <= 6) {
    const times: string[] = [];
    hours.forEach(h => mins.forEach(m => times.push(`${pad(h)}:${pad(m)}`)));
    return `At ${list(times)}`;
  }
  return `At minute ${list(mins.map(String))} of hours ${spans(hours, pad)}`;
}

function dayWords(c: Cron): string {
  const parts: string[] = [];
  const dows = sortedOf(c.dow);
  const doms = sortedOf(c.dom);
  const weekdays = !c.dow.any ? spans(dows, d => DAY_NAMES[d]) : '';
  const monthdays = !c.dom.any ? `on day ${spans(doms, String)} of the month` : '';
  if (weekdays && monthdays) {
    parts.push(`${monthdays} or on ${weekdays}`);
  } else if (weekdays) {
    parts.push(dows.length === 7 ? 'every day' : `on ${weekdays}`);
  } else if (monthdays) {
    parts.push(monthdays);
  }
  if (!c.month.any) {
    parts.push(`in ${spans(sortedOf(c.month), m => MONTH_NAMES[m - 1])}`);
  }
  return parts.join(', ');
}

/** The expression in plain words, e.g. 'At 06:30, on Monday through Friday'. */
export function describeCron(c: Cron): string {
  const days = dayWords(c);
  const time = timeWords(c);
  if (days) {
    return `${time}, ${days}`;
  }
  return time.startsWith('At ') ? `Every day at ${time.slice(3)}` : time;
}

// -- next times in a time zone -------------------------------------------------------------------
interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallClock(at: Date, timeZone: string): Wall {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', weekday: 'short'
    });
    formatters.set(timeZone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(at)) {
    p[part.type] = part.value;
  }
  return {
    year: +p.year, month: +p.month, day: +p.day, hour: +p.hour % 24, minute: +p.minute,
    weekday: DAYS.indexOf(p.weekday.toLowerCase().slice(0, 3))
  };
}

/** True when ``name`` is a time zone this browser knows. */
export function knownZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return name.trim() !== '';
  } catch {
    return false;
  }
}

function dayMatches(c: Cron, w: Wall): boolean {
  const dom = c.dom.values.has(w.day);
  const dow = c.dow.values.has(w.weekday);
  if (c.dom.any || c.dow.any) {
    return dom && dow; // one of them is '*' (all values): the other decides
  }
  return dom || dow; // both restricted: cron runs on either
}

/**
 * The next ``count`` times after ``from`` at which ``c`` fires, read in ``timeZone``.
 * Walks forward skipping whole days, hours and minutes that cannot match; bounded to
 * about five years so an expression like '0 0 31 2 *' ends with an empty list.
 */
export function nextTimes(c: Cron, timeZone: string, count = 3, from: Date = new Date()): Date[] {
  const out: Date[] = [];
  let t = Math.floor(from.getTime() / 60000) * 60000 + 60000;
  const end = from.getTime() + 5 * 366 * 86400000;
  for (let guard = 0; out.length < count && t < end && guard < 200000; guard++) {
    const w = wallClock(new Date(t), timeZone);
    if (!c.month.values.has(w.month) || !dayMatches(c, w)) {
      t += ((23 - w.hour) * 60 + (60 - w.minute)) * 60000; // to the next local midnight
    } else if (!c.hour.values.has(w.hour)) {
      t += (60 - w.minute) * 60000;
    } else if (!c.minute.values.has(w.minute)) {
      t += 60000;
    } else {
      out.push(new Date(t));
      t += 60000;
    }
  }
  return out;
}

/** ``at`` as the user reads it in ``timeZone``: 'Mon 3 Mar 2025, 06:30'. */
export function formatIn(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23'
  }).format(at);
}
