/**
 * The side panel (id ``mlops-panel``) for the notebook in front of the user: delivery state,
 * jobs in progress with their current cell, schedules with pause/resume/remove, alerts, and
 * the notebook's runs with the params that changed and the primary metric's trend.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { api, Job, Run, Schedule } from './api';
import { describeCron, formatIn, parseCron } from './cron';
import { userZone } from './dialogs';
import { el } from './form';
import { NotebookModel } from './model';
import { pyRepr } from './params';
import { trend } from './trend';

const MAX_RUNS = 25;
const MAX_DONE_JOBS = 5;

const when = (iso: string | number | null) =>
  iso === null ? '—' : formatIn(new Date(iso), userZone());

function section(title: string, className: string, ...rows: (HTMLElement | null)[]): HTMLElement {
  return el('section', { className: `mlops-Section ${className}` }, el('h3', {}, title), ...rows);
}

const empty = (text: string) => el('div', { className: 'mlops-Empty' }, text);

function statusBadge(status: string): HTMLElement {
  return el('span', { className: `mlops-Status mlops-Status-${status.toLowerCase()}` }, status);
}

export class MlopsPanel extends Widget {
  constructor(private model: NotebookModel, private commands: CommandRegistry, private onError: (m: string) => void) {
    super();
    this.id = 'mlops-panel';
    this.addClass('mlops-Panel');
    this.title.caption = 'MLOps: runs, jobs and schedules of this notebook';
    model.changed.connect(this.render, this);
    this.render();
  }

  render(): void {
    const m = this.model;
    const header = el('header', { className: 'mlops-Header' },
      el('div', { className: 'mlops-Notebook', title: m.path ?? '' }, m.path ?? 'No notebook open'),
      el('button', { className: 'jp-mod-styled mlops-Refresh', title: 'Refresh now', onclick: () => m.refresh() }, '↻'));
    const parts: (HTMLElement | null)[] = [header, this.delivery()];
    for (const error of m.errors) {
      parts.push(el('div', { className: 'mlops-Error', role: 'alert' }, error));
    }
    if (m.path) {
      if (!m.loaded) {
        parts.push(empty('Loading…'));
      } else {
        parts.push(this.jobs(), this.schedules(), this.alerts(), this.runs());
      }
    }
    this.node.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  }

  private delivery(): HTMLElement {
    const s = this.model.status;
    if (!s) {
      return el('div', { className: 'mlops-Delivery' });
    }
    const trouble = s.server_reachable === false || s.set_aside > 0;
    return el('div', {
      className: `mlops-Delivery${trouble ? ' mlops-mod-warn' : ''}`,
      title: `journal ${s.journal}\ntracking ${s.tracking_uri}\ndelivery: ${s.deliverer.state}${s.deliverer.pid ? ` (pid ${s.deliverer.pid})` : ''}`
    }, s.summary);
  }

  private jobs(): HTMLElement {
    const jobs = this.model.jobs;
    const live = jobs.filter(j => j.state === 'queued' || j.state === 'running');
    const done = jobs.filter(j => !live.includes(j)).slice(0, MAX_DONE_JOBS);
    const rows = [...live, ...done].map(j => this.job(j));
    return section('Jobs', 'mlops-Jobs', ...(rows.length ? rows : [empty('No job of this notebook yet: ▶ Run job in the toolbar.')]));
  }

  private job(j: Job): HTMLElement {
    const row = el('div', { className: 'mlops-Job', dataset: { state: j.state, job: j.id } }, statusBadge(j.state));
    if (j.state === 'running' || j.state === 'queued') {
      const cell = j.current_cell !== null && j.cell_count ? `cell ${j.current_cell + 1} of ${j.cell_count}` : 'starting';
      row.append(el('span', { className: 'mlops-JobCell' }, j.state === 'queued' ? 'waiting' : cell));
      if (j.current_cell !== null && j.cell_count) {
        const pct = Math.round(((j.current_cell + 1) / j.cell_count) * 100);
        row.append(el('div', { className: 'mlops-Progress' }, el('div', { style: `width: ${pct}%` })));
      }
    } else if (j.state === 'FAILED') {
      row.append(el('span', { className: 'mlops-JobFailure', title: j.error ?? '' },
        `${j.failure ?? 'failed'}${j.current_cell !== null ? ` at cell ${j.current_cell + 1}` : ''}${j.error ? `: ${j.error}` : ''}`));
    }
    row.append(el('span', { className: 'mlops-When' }, when(j.started)));
    const changed = Object.entries(j.parameters || {});
    if (changed.length) {
      row.append(el('div', { className: 'mlops-Params' }, changed.map(([k, v]) => `${k}=${pyRepr(v)}`).join(', ')));
    }
    if (j.output_path && (j.state === 'FINISHED' || j.state === 'FAILED')) {
      row.append(el('button', {
        className: 'mlops-Link mlops-OpenOutput', title: j.output_path,
        onclick: () => this.commands.execute('docmanager:open', { path: j.output_path })
      }, 'open executed notebook'));
    }
    return row;
  }

  private schedules(): HTMLElement {
    const rows = this.model.schedules.map(s => this.schedule(s));
    return section('Schedules', 'mlops-Schedules', ...(rows.length ? rows : [empty('Not scheduled: ⏱ Schedule in the toolbar.')]));
  }

  private schedule(s: Schedule): HTMLElement {
    let words = s.cron;
    try {
      words = describeCron(parseCron(s.cron));
    } catch {
      // the server accepted it; show it as written
    }
    const act = (label: string, className: string, run: () => Promise<unknown>) =>
      el('button', {
        className: `mlops-Action ${className}`, onclick: async () => {
          try {
            await run();
          } catch (err) {
            this.onError((err as Error).message);
          }
          await this.model.refresh();
        }
      }, label);
    const last = s.last
      ? el('span', { className: 'mlops-Last' }, 'last: ', statusBadge(s.last.status), ` ${when(s.last.at)}`)
      : el('span', { className: 'mlops-Last' }, 'not run yet');
    return el('div', { className: `mlops-Schedule${s.paused ? ' mlops-mod-paused' : ''}`, dataset: { schedule: s.name } },
      el('div', { className: 'mlops-ScheduleName' }, s.name, s.paused ? el('span', { className: 'mlops-Paused' }, 'paused') : null),
      el('div', { className: 'mlops-ScheduleWhen', title: `${s.cron} (${s.timezone})` }, `${words} (${s.timezone})`),
      el('div', {}, el('span', { className: 'mlops-Next' }, s.paused ? 'next: paused' : `next: ${when(s.next_run)}`), ' · ', last),
      el('div', { className: 'mlops-Actions' },
        s.paused ? act('Resume', 'mlops-Resume', () => api.pause(s.name, false))
          : act('Pause', 'mlops-Pause', () => api.pause(s.name, true)),
        act('Remove', 'mlops-Remove', async () => {
          const answer = await showDialog({
            title: `Remove schedule ${s.name}?`, body: `${s.notebook} will no longer run ${words.toLowerCase()}.`,
            buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove' })]
          });
          if (answer.button.accept) {
            await api.remove(s.name);
          }
        })));
  }

  private alerts(): HTMLElement | null {
    const alerts = this.model.runs.filter(r => r.alert).slice(0, 5);
    if (!alerts.length) {
      return null;
    }
    return section('Alerts', 'mlops-Alerts', ...alerts.map(r =>
      el('div', { className: 'mlops-Alert' }, el('strong', {}, r.name), ` ${r.alert}`, el('span', { className: 'mlops-When' }, when(r.start_time)))));
  }

  private runs(): HTMLElement {
    const all = this.model.runs.filter(r => r.kind !== 'session'); // a kernel session's parent run says nothing here
    const runs = all.slice(0, MAX_RUNS);
    if (!runs.length) {
      return section('Runs', 'mlops-Runs', empty('No run yet: put %%track on a cell and run it.'));
    }
    return section('Runs', 'mlops-Runs', trend(all), ...runs.map(r => this.run(r)));
  }

  private run(r: Run): HTMLElement {
    const url = r.url ?? (this.model.uiUrl ? `${this.model.uiUrl.replace(/\/$/, '')}/#/runs/${r.run_id}` : null);
    const name = url
      ? el('a', { href: url, target: '_blank', rel: 'noopener', className: 'mlops-RunName', title: `${r.name}: open ${r.run_id} in MLflow` }, r.name)
      : el('span', { className: 'mlops-RunName', title: `${r.name} (${r.run_id})` }, r.name);
    const metric = r.primary_metric
      ? el('span', { className: 'mlops-Metric' }, `${r.primary_metric.name} ${fmt(r.primary_metric.value)}`) : null;
    const changed = Object.entries(r.changed_params || {});
    return el('div', { className: 'mlops-Run', dataset: { run: r.run_id, status: r.status } },
      el('div', { className: 'mlops-RunHead' }, statusBadge(r.status), name, metric),
      changed.length ? el('div', { className: 'mlops-Params' },
        changed.map(([k, [a, b]]) => `${k} ${a ?? '∅'} → ${b ?? '∅'}`).join(', ')) : null,
      r.failure ? el('div', { className: 'mlops-JobFailure' }, r.failure) : null,
      el('div', { className: 'mlops-When' }, `${r.kind} · ${when(r.start_time)}`));
  }

  dispose(): void {
    this.model.changed.disconnect(this.render, this);
    super.dispose();
  }
}

export function fmt(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? value.toExponential(2) : String(Number(value.toPrecision(4)));
}
