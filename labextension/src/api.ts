/**
 * The server extension's REST API (`<base_url>mlops/api/`), behind Jupyter's own auth:
 * ServerConnection adds the token and the XSRF header. Errors come back as
 * `{"message": "<one line>"}` and are raised as ApiError with that line.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { Param } from './params';

export interface Schedule {
  name: string;
  notebook: string;
  cron: string;
  timezone: string;
  parameters: Record<string, unknown>;
  catch_up: 'none' | 'one';
  timeout: number | null;
  retries: number;
  on_alert: string | null;
  paused: boolean;
  next_run: string | null;
  last: { status: string; run_id: string | null; at: string | null } | null;
}

export interface Job {
  id: string;
  notebook: string;
  state: 'queued' | 'running' | 'FINISHED' | 'FAILED';
  current_cell: number | null;
  cell_count: number | null;
  failure: string | null;
  error: string | null;
  run_id: string | null;
  output_path: string | null;
  parameters: Record<string, unknown>;
  started: string | null;
}

export interface Run {
  run_id: string;
  name: string;
  kind: string;
  status: string;
  start_time: number;
  params: Record<string, string>;
  changed_params: Record<string, [unknown, unknown]>;
  metrics: Record<string, number>;
  primary_metric: { name: string; value: number } | null;
  failure: string | null;
  alert: string | null;
  cell_id: string | null;
  cell_sha256: string | null;
  url: string | null;
}

export interface Status {
  journal: string;
  tracking_uri: string;
  pending: number;
  set_aside: number;
  deliverer: { state: string; pid: number | null };
  server_reachable: boolean | null;
  summary: string;
}

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** One call to ``mlops/api/<path>``; JSON in and out. */
export async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlops', 'api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (err) {
    throw new ApiError(`the Jupyter server did not answer: ${err}`, 0);
  }
  if (response.status === 204) {
    return undefined as T;
  }
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data?.message ||
      (response.status === 404 && !data ? 'the mlops-magics server extension is not enabled on this Jupyter server'
        : `${response.status} ${response.statusText}`);
    throw new ApiError(message, response.status);
  }
  return data as T;
}

const q = (value: string) => encodeURIComponent(value);
const json = (method: string, body: unknown): RequestInit => ({ method, body: JSON.stringify(body) });

export const api = {
  status: () => request<Status>('status'),
  parameters: (path: string) => request<{ path: string; parameters: Param[] }>(`notebook?path=${q(path)}`),
  runs: (notebook: string) => request<{ runs: Run[]; ui_url: string | null }>(`runs?notebook=${q(notebook)}`),
  jobs: (notebook: string) => request<{ jobs: Job[] }>(`jobs?notebook=${q(notebook)}`),
  job: (id: string) => request<Job>(`jobs/${q(id)}`),
  runJob: (body: { notebook: string; parameters: Record<string, unknown>; timeout?: number }) =>
    request<Job>('jobs', json('POST', body)),
  schedules: (notebook?: string) =>
    request<{ schedules: Schedule[] }>(notebook ? `schedules?notebook=${q(notebook)}` : 'schedules'),
  addSchedule: (body: Partial<Schedule>) => request<Schedule>('schedules', json('POST', body)),
  pause: (name: string, paused: boolean) => request<Schedule>(`schedules/${q(name)}`, json('PATCH', { paused })),
  remove: (name: string) => request<void>(`schedules/${q(name)}`, { method: 'DELETE' })
};
