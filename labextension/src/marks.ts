/**
 * A mark on each ``%%track`` cell: its last run's status and primary metric, in the cell's
 * prompt column (class ``mlops-tracked`` on the cell, a ``.mlops-CellMark`` badge).
 *
 * A run belongs to a cell by the cell's id (the kernel records JupyterLab's cell id), else
 * by the SHA-256 of the cell's body without the ``%%track`` line (papermill runs have no
 * cell id), as the tracking side writes it.
 */
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { Run } from './api';
import { fmt } from './panel';

const TRACK = /^\s*%%track\b/;

/** The body IPython hands the cell magic: the lines after the first. */
export function trackedBody(source: string): string | null {
  if (!TRACK.test(source)) {
    return null;
  }
  const nl = source.indexOf('\n');
  return nl < 0 ? '' : source.slice(nl + 1);
}

const hashes = new Map<string, string>();

async function sha256(text: string): Promise<string | null> {
  const known = hashes.get(text);
  if (known) {
    return known;
  }
  if (!globalThis.crypto?.subtle) {
    return null; // not a secure context (plain http to a remote host): match by cell id only
  }
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  const hex = [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
  if (hashes.size > 500) {
    hashes.clear();
  }
  hashes.set(text, hex);
  return hex;
}

async function lastRun(cell: Cell, body: string, runs: Run[]): Promise<Run | null> {
  const byId = runs.find(r => r.cell_id && r.cell_id === cell.model.id);
  if (byId) {
    return byId;
  }
  // IPython adds a final newline to a cell that lacks one before splitting off the magic line
  const shas = new Set(await Promise.all([sha256(body), sha256(body.endsWith('\n') ? body : `${body}\n`)]));
  return runs.find(r => r.cell_sha256 && shas.has(r.cell_sha256)) ?? null;
}

function badge(cell: Cell): HTMLElement {
  let mark = cell.node.querySelector<HTMLElement>(':scope > .mlops-CellMark');
  if (!mark) {
    mark = document.createElement('div');
    mark.className = 'mlops-CellMark';
    cell.node.append(mark);
  }
  return mark;
}

/** Mark every ``%%track`` cell of ``panel`` with its last run among ``runs`` (newest first). */
export async function markCells(panel: NotebookPanel, runs: Run[]): Promise<void> {
  for (const cell of panel.content.widgets) {
    const body = cell.model.type === 'code' ? trackedBody(cell.model.sharedModel.getSource()) : null;
    if (body === null) {
      if (cell.hasClass('mlops-tracked')) {
        cell.removeClass('mlops-tracked');
        cell.node.querySelector(':scope > .mlops-CellMark')?.remove();
      }
      continue;
    }
    cell.addClass('mlops-tracked');
    const run = await lastRun(cell, body, runs);
    const mark = badge(cell);
    if (!run) {
      mark.dataset.status = 'none';
      mark.textContent = 'no run';
      mark.title = 'mlops-magics: no run of this cell yet';
      continue;
    }
    const status = run.status.toUpperCase();
    mark.dataset.status = status.toLowerCase();
    mark.dataset.run = run.run_id;
    const icon = status === 'FINISHED' ? '✓' : status === 'FAILED' ? '✗' : status === 'RUNNING' ? '…' : '•';
    const metric = run.primary_metric ? `${run.primary_metric.name} ${fmt(run.primary_metric.value)}` : '';
    // the prompt column is narrow: a short name and three significant digits, the rest on hover
    const short = run.primary_metric
      ? `${run.primary_metric.name.slice(0, 8)} ${fmt(Number(run.primary_metric.value.toPrecision(3)))}` : '';
    mark.replaceChildren(
      Object.assign(document.createElement('span'), { className: 'mlops-CellMark-status', textContent: `${icon} ${status.toLowerCase()}` }),
      Object.assign(document.createElement('span'), { className: 'mlops-CellMark-metric', textContent: short }));
    mark.title = `last run ${run.name} (${run.run_id}): ${status}${metric ? `, ${metric}` : ''}${run.failure ? `, ${run.failure}` : ''}`;
  }
}
