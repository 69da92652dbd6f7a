/**
 * What the panel and the cell marks show for the notebook in front of the user: its runs,
 * jobs, schedules and the journal's delivery state, polled from the server extension.
 * Polls fast (2 s) while a job is in progress or a tracked cell has just run, else every
 * 10 s, and not at all while the browser tab is hidden.
 */
import { Signal } from '@lumino/signaling';

import { api, Job, Run, Schedule, Status } from './api';

const FAST = 2000;
const SLOW = 10000;

export class NotebookModel {
  readonly changed = new Signal<this, void>(this);
  path: string | null = null;
  runs: Run[] = [];
  uiUrl: string | null = null;
  jobs: Job[] = [];
  schedules: Schedule[] = [];
  status: Status | null = null;
  errors: string[] = [];
  loaded = false;
  private timer: number | null = null;
  private fastUntil = 0;
  private inFlight: Promise<void> | null = null;
  private disposed = false;

  setPath(path: string | null): void {
    if (path === this.path) {
      return;
    }
    this.path = path;
    this.runs = [];
    this.jobs = [];
    this.schedules = [];
    this.loaded = false;
    this.changed.emit();
    void this.refresh();
  }

  /** Poll fast for a while: a job was started or a tracked cell ran. */
  expectChange(ms = 30000): void {
    this.fastUntil = Math.max(this.fastUntil, Date.now() + ms);
    void this.refresh();
  }

  refresh(): Promise<void> {
    if (!this.inFlight) {
      this.inFlight = this.load().finally(() => {
        this.inFlight = null;
        this.schedule();
      });
    }
    return this.inFlight;
  }

  private async load(): Promise<void> {
    const path = this.path;
    const [status, runs, jobs, schedules] = await Promise.allSettled([
      api.status(),
      path ? api.runs(path) : Promise.resolve({ runs: [] as Run[], ui_url: null }),
      path ? api.jobs(path) : Promise.resolve({ jobs: [] as Job[] }),
      path ? api.schedules(path) : Promise.resolve({ schedules: [] as Schedule[] })
    ]);
    if (path !== this.path || this.disposed) {
      return; // the user moved to another notebook meanwhile
    }
    const errors = new Set<string>();
    const take = <T>(r: PromiseSettledResult<T>, use: (v: T) => void) =>
      r.status === 'fulfilled' ? use(r.value) : errors.add((r.reason as Error).message);
    take(status, v => (this.status = v));
    take(runs, v => {
      this.runs = v.runs;
      this.uiUrl = v.ui_url;
    });
    take(jobs, v => (this.jobs = v.jobs));
    take(schedules, v => (this.schedules = v.schedules));
    this.errors = [...errors];
    this.loaded = true;
    this.changed.emit();
  }

  get busy(): boolean {
    return this.jobs.some(j => j.state === 'queued' || j.state === 'running');
  }

  private schedule(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    if (this.disposed) {
      return;
    }
    const delay = this.busy || Date.now() < this.fastUntil ? FAST : SLOW;
    this.timer = window.setTimeout(() => {
      this.timer = null;
      if (document.visibilityState === 'hidden') {
        this.schedule();
      } else {
        void this.refresh();
      }
    }, delay);
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    Signal.clearData(this);
  }
}
