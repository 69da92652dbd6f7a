/**
 * A small modal form in JupyterLab's dialog style that stays open until the server says
 * yes: every field shows its own error line, checked as the user types and again on
 * submit, and a 400 from the server is put under the field it names.
 */

export type Check = () => string | null;

export interface Field {
  key: string;
  row: HTMLElement;
  input: HTMLInputElement | HTMLSelectElement;
  error: HTMLElement;
  check: Check;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K, props: Record<string, any> = {}, ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (key === 'className') {
      node.className = value;
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (key.startsWith('on')) {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key in node && key !== 'list') {
      (node as any)[key] = value;
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child);
    }
  }
  return node;
}

export class Form {
  readonly node: HTMLElement;
  readonly body: HTMLElement;
  readonly fields: Field[] = [];
  private general: HTMLElement;
  private submitButton: HTMLButtonElement;
  private done: (ok: boolean) => void = () => undefined;

  constructor(
    title: string, okLabel: string, className: string,
    private submit: () => Promise<string | null>
  ) {
    this.body = el('div', { className: 'mlops-Form-body' });
    this.general = el('div', { className: 'mlops-FieldError mlops-Form-error', role: 'alert' });
    this.submitButton = el('button', {
      className: 'jp-Dialog-button jp-mod-accept jp-mod-styled', type: 'submit'
    }, el('div', { className: 'jp-Dialog-buttonLabel' }, okLabel));
    const cancel = el('button', {
      className: 'jp-Dialog-button jp-mod-reject jp-mod-styled', type: 'button', onclick: () => this.close(false)
    }, el('div', { className: 'jp-Dialog-buttonLabel' }, 'Cancel'));
    const form = el('form', { className: 'jp-Dialog-content mlops-Form', onsubmit: (e: Event) => this.onSubmit(e) },
      el('div', { className: 'jp-Dialog-header' }, el('div', { className: 'jp-Dialog-title' }, title)),
      this.body, this.general,
      el('div', { className: 'jp-Dialog-footer' },
        el('div', { className: 'jp-Dialog-footerButtons' }, cancel, this.submitButton)));
    this.node = el('div', { className: `jp-Dialog jp-ThemedContainer mlops-Dialog ${className}`, tabIndex: -1 }, form);
    this.node.addEventListener('keydown', e => {
      if (e.key === 'Escape') {
        this.close(false);
      }
    });
  }

  section(title: string, hint?: string): HTMLElement {
    const box = el('fieldset', { className: 'mlops-Form-section' }, el('legend', {}, title),
      hint ? el('div', { className: 'mlops-Form-hint' }, hint) : null);
    this.body.append(box);
    return box;
  }

  /** A labelled input with its own error line; ``check`` runs on every change and on submit. */
  add(parent: HTMLElement, key: string, label: string, input: HTMLInputElement | HTMLSelectElement,
    check: Check = () => null, help?: string, extra?: HTMLElement): Field {
    input.name = key;
    input.classList.add('jp-mod-styled', 'mlops-Form-input');
    const error = el('div', { className: 'mlops-FieldError', role: 'alert' });
    const id = `mlops-field-${key.replace(/\W/g, '_')}`;
    input.id = id;
    const row = el('div', { className: 'mlops-Form-row', dataset: { field: key } },
      el('label', { htmlFor: id }, label), input,
      help ? el('div', { className: 'mlops-Form-hint' }, help) : null, extra, error);
    parent.append(row);
    const field = { key, row, input, error, check };
    const run = () => this.show(field, check());
    input.addEventListener(input instanceof HTMLSelectElement || input.type === 'checkbox' ? 'change' : 'input', run);
    this.fields.push(field);
    return field;
  }

  show(field: Field, message: string | null): void {
    field.error.textContent = message ?? '';
    field.row.classList.toggle('mlops-mod-invalid', !!message);
    field.input.setAttribute('aria-invalid', message ? 'true' : 'false');
  }

  /** A server message put under the field it names (a quoted name, else a keyword), else at the bottom. */
  showServerError(message: string, keywords: Record<string, string[]> = {}): void {
    const quoted = [...message.matchAll(/'([^']+)'/g)].map(m => m[1]);
    let target = this.fields.find(f => quoted.includes(f.key.replace(/^param:/, '')) && f.key.startsWith('param:'));
    if (!target) {
      const low = message.toLowerCase();
      const key = Object.keys(keywords).find(k => keywords[k].some(w => low.includes(w)));
      target = this.fields.find(f => f.key === key);
    }
    if (target) {
      this.show(target, message);
      target.input.focus();
    } else {
      this.general.textContent = message;
    }
  }

  private async onSubmit(event: Event): Promise<void> {
    event.preventDefault();
    this.general.textContent = '';
    let first: Field | null = null;
    for (const f of this.fields) {
      const message = f.check();
      this.show(f, message);
      first = first ?? (message ? f : null);
    }
    if (first) {
      first.input.focus();
      return;
    }
    this.submitButton.disabled = true;
    try {
      const failed = await this.submit();
      if (failed === null) {
        this.close(true);
      }
    } finally {
      this.submitButton.disabled = false;
    }
  }

  open(): Promise<boolean> {
    document.body.append(this.node);
    const first = this.node.querySelector<HTMLElement>('input, select');
    (first ?? this.node).focus();
    return new Promise(resolve => (this.done = resolve));
  }

  close(ok: boolean): void {
    this.node.remove();
    this.done(ok);
  }
}
