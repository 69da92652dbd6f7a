/**
 * The two dialogs the notebook toolbar opens: run this notebook now as a job, and schedule
 * it. Both are generated from the notebook's parameters cell (GET /notebook?path=): one
 * typed field per parameter with its default.
 */
import { Notification } from '@jupyterlab/apputils';

import { api, ApiError, Schedule } from './api';
import { CronError, describeCron, formatIn, knownZone, nextTimes, parseCron } from './cron';
import { el, Field, Form } from './form';
import { convert, Param, ParamError, pyRepr, same } from './params';

const SERVER_FIELDS: Record<string, string[]> = {
  cron: ['cron'],
  timezone: ['time zone', 'timezone'],
  name: ['schedule name', 'already', 'name '],
  on_alert: ['on_alert', 'on alert'],
  timeout: ['timeout'],
  retries: ['retries']
};

/** The user's own time zone, as the browser knows it. */
export function userZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function paramFields(form: Form, params: Param[]): () => Record<string, unknown> {
  const box = form.section('Parameters', params.length ? undefined
    : 'This notebook has no cell tagged "parameters": it runs as it is.');
  const read: [Param, Field][] = [];
  for (const p of params) {
    const isBool = p.type === 'bool';
    const input = isBool
      ? el('input', { type: 'checkbox', checked: p.default === true })
      : el('input', { type: 'text', value: pyRepr(p.default, p.type), spellcheck: false });
    input.dataset.param = p.name;
    const field = form.add(box, `param:${p.name}`, `${p.name}  (${p.type})`, input, () => {
      if (isBool) {
        return null;
      }
      try {
        convert(p, (input as HTMLInputElement).value);
        return null;
      } catch (err) {
        return err instanceof ParamError ? err.message : String(err);
      }
    }, p.help || undefined);
    read.push([p, field]);
  }
  return () => {
    const out: Record<string, unknown> = {};
    for (const [p, f] of read) {
      const input = f.input as HTMLInputElement;
      const value = p.type === 'bool' ? input.checked : convert(p, input.value);
      if (!same(value, p.default)) {
        out[p.name] = value; // only what differs from the notebook's own default
      }
    }
    return out;
  };
}

function numberCheck(label: string, input: HTMLInputElement, integer: boolean, optional: boolean) {
  return () => {
    const text = input.value.trim();
    if (text === '' && optional) {
      return null;
    }
    const ok = integer ? /^\d+$/.test(text) : /^\d*\.?\d+$/.test(text) && Number(text) > 0;
    return ok ? null : `${label} wants ${integer ? 'a whole number, 0 or more' : 'a number of seconds above 0'}, got '${text}'`;
  };
}

async function loadParams(path: string): Promise<Param[] | null> {
  try {
    return (await api.parameters(path)).parameters;
  } catch (err) {
    Notification.error(`Cannot read the parameters of ${path}: ${(err as Error).message}`, { autoClose: 8000 });
    return null;
  }
}

/** Run the notebook now as a papermill job (POST /jobs); ``onDone`` after the server took it. */
export async function runJobDialog(path: string, onDone: () => void): Promise<void> {
  const params = await loadParams(path);
  if (params === null) {
    return;
  }
  let values: () => Record<string, unknown> = () => ({});
  const timeout = el('input', { type: 'text', placeholder: 'none', value: '' });
  const form: Form = new Form(`Run ${path} as a job`, 'Run now', 'mlops-RunDialog', async () => {
    try {
      const body: { notebook: string; parameters: Record<string, unknown>; timeout?: number } = {
        notebook: path, parameters: values()
      };
      if (timeout.value.trim()) {
        body.timeout = Number(timeout.value);
      }
      const job = await api.runJob(body);
      Notification.info(`Job ${job.id} started for ${path}: follow it in the MLOps panel`, { autoClose: 5000 });
      onDone();
      return null;
    } catch (err) {
      form.showServerError((err as Error).message, SERVER_FIELDS);
      return (err as Error).message;
    }
  });
  values = paramFields(form, params);
  const options = form.section('Limits');
  form.add(options, 'timeout', 'Timeout per cell (seconds)', timeout,
    numberCheck('timeout', timeout, false, true));
  await form.open();
}

function zoneList(): HTMLDataListElement {
  const list = el('datalist', { id: 'mlops-timezones' });
  const zones: string[] = (Intl as any).supportedValuesOf?.('timeZone') ?? [userZone(), 'UTC'];
  for (const z of zones) {
    list.append(el('option', { value: z }));
  }
  return list;
}

function stem(path: string): string {
  return (path.split('/').pop() || path).replace(/\.ipynb$/, '').replace(/[^\w.-]+/g, '-');
}

/** Schedule the notebook: name, cron (read back in words with its next three times), time zone, ... */
export async function scheduleDialog(path: string, onDone: () => void): Promise<void> {
  const [params, existing] = await Promise.all([
    loadParams(path), api.schedules().then(r => r.schedules).catch(() => [] as Schedule[])
  ]);
  if (params === null) {
    return;
  }
  const name = el('input', { type: 'text', value: stem(path), spellcheck: false });
  const cron = el('input', { type: 'text', value: '0 6 * * mon-fri', spellcheck: false });
  const zone = el('input', { type: 'text', value: userZone(), spellcheck: false });
  zone.setAttribute('list', 'mlops-timezones');
  const reading = el('div', { className: 'mlops-CronReading', 'aria-live': 'polite' });
  const catchUp = el('select', {},
    el('option', { value: 'one' }, 'run once for missed times'),
    el('option', { value: 'none' }, 'skip missed times'));
  const timeout = el('input', { type: 'text', placeholder: 'none', value: '' });
  const retries = el('input', { type: 'text', value: '0' });
  const onAlert = el('select', {}, el('option', { value: '' }, 'nothing'),
    ...existing.map(s => el('option', { value: s.name }, `${s.name}  (${s.notebook})`)));

  const cronCheck = () => {
    try {
      const c = parseCron(cron.value);
      const tz = knownZone(zone.value.trim()) ? zone.value.trim() : userZone();
      const next = nextTimes(c, tz, 3);
      reading.replaceChildren(el('div', { className: 'mlops-CronWords' }, describeCron(c)),
        el('div', { className: 'mlops-CronNext' }, next.length
          ? `Next: ${next.map(t => formatIn(t, tz)).join(' · ')} (${tz})` : 'never matches a date'));
      return next.length ? null : `cron expression '${cron.value.trim()}' never matches a date`;
    } catch (err) {
      reading.replaceChildren();
      return err instanceof CronError ? `invalid cron expression: ${err.message}` : String(err);
    }
  };
  let values: () => Record<string, unknown> = () => ({});
  const form: Form = new Form(`Schedule ${path}`, 'Schedule', 'mlops-ScheduleDialog', async () => {
    try {
      const made = await api.addSchedule({
        name: name.value.trim(), notebook: path, cron: cron.value.trim(), timezone: zone.value.trim(),
        parameters: values(), catch_up: catchUp.value as 'one' | 'none',
        timeout: timeout.value.trim() ? Number(timeout.value) : null,
        retries: Number(retries.value), on_alert: onAlert.value || null
      });
      Notification.success(`Scheduled ${made.name}: next run ${made.next_run ? formatIn(new Date(made.next_run), userZone()) : 'none'}`,
        { autoClose: 5000 });
      onDone();
      return null;
    } catch (err) {
      const message = err instanceof ApiError ? err.message : String(err);
      form.showServerError(message, SERVER_FIELDS);
      return message;
    }
  });
  const when = form.section('When');
  form.add(when, 'name', 'Name', name, () => (name.value.trim() ? null : 'a schedule needs a name'));
  form.add(when, 'cron', 'Cron', cron, cronCheck,
    'minute hour day month weekday, e.g. 0 6 * * mon-fri, */15 * * * *, @daily', reading);
  form.add(when, 'timezone', 'Time zone', zone, () => {
    const ok = knownZone(zone.value.trim());
    cronCheck();
    return ok ? null : `unknown time zone '${zone.value.trim()}' (an IANA name such as Europe/Paris)`;
  });
  when.append(zoneList());
  values = paramFields(form, params);
  const how = form.section('If things go wrong');
  form.add(how, 'catch_up', 'After downtime', catchUp);
  form.add(how, 'timeout', 'Timeout per cell (seconds)', timeout, numberCheck('timeout', timeout, false, true));
  form.add(how, 'retries', 'Retries', retries, numberCheck('retries', retries, true, false));
  form.add(how, 'on_alert', 'On alert, run schedule', onAlert);
  cronCheck();
  await form.open();
}
