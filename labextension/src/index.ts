/**
 * mlops-magics in JupyterLab: two notebook toolbar items (``mlops-run-job``,
 * ``mlops-schedule``), the side panel ``mlops-panel`` and a mark on each ``%%track`` cell,
 * all talking to the server extension at ``<base_url>mlops/api/``.
 */
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Notification, ToolbarButton } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { runJobDialog, scheduleDialog } from './dialogs';
import { markCells, trackedBody } from './marks';
import { NotebookModel } from './model';
import { MlopsPanel } from './panel';

const ICON = new LabIcon({
  name: 'mlops-magics:panel',
  svgstr: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M3 19h18v2H3z"/><path d="M4 15l5-6 4 4 6-8 1.6 1.2-7.4 9.8-4-4-3.6 4.4z"/></g></svg>'
});

class ToolbarItems implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(private model: NotebookModel) {}

  createNew(panel: NotebookPanel): IDisposable {
    const changed = () => {
      this.model.expectChange();
    };
    const run = new ToolbarButton({
      label: 'Run job', tooltip: 'Run this notebook now as a job (papermill), with typed parameters',
      className: 'mlops-ToolbarButton',
      onClick: () => void panel.context.save().then(() => runJobDialog(panel.context.path, changed))
    });
    const schedule = new ToolbarButton({
      label: 'Schedule', tooltip: 'Run this notebook on a cron schedule',
      className: 'mlops-ToolbarButton',
      onClick: () => void panel.context.save().then(() => scheduleDialog(panel.context.path, changed))
    });
    const at = Math.max(0, panel.toolbar.node.querySelectorAll('.jp-Toolbar-item').length - 1);
    panel.toolbar.insertItem(at, 'mlops-run-job', run);
    panel.toolbar.insertItem(at + 1, 'mlops-schedule', schedule);
    return new DisposableDelegate(() => {
      run.dispose();
      schedule.dispose();
    });
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlops-magics-labextension:plugin',
  description: 'Runs, jobs and schedules of the notebook in a side panel; run and schedule from the toolbar.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, labShell: ILabShell | null) => {
    const model = new NotebookModel();
    const panel = new MlopsPanel(model, app.commands, message => Notification.error(message, { autoClose: 8000 }));
    panel.title.icon = ICON;
    app.shell.add(panel, 'right', { rank: 900 });
    app.docRegistry.addWidgetExtension('Notebook', new ToolbarItems(model));

    const follow = () => {
      const current = tracker.currentWidget;
      model.setPath(current ? current.context.path : null);
    };
    tracker.currentChanged.connect(follow);
    labShell?.currentChanged.connect(() => {
      // a notebook stays "current" while a console or file has focus: keep showing it
      if (tracker.currentWidget && !tracker.currentWidget.isDisposed) {
        follow();
      }
    });
    tracker.widgetAdded.connect((_, nb) => {
      void nb.context.ready.then(() => follow());
      nb.context.pathChanged.connect(follow);
    });
    model.changed.connect(() => {
      const nb = tracker.find(w => w.context.path === model.path);
      if (nb && model.loaded) {
        void markCells(nb, model.runs);
      }
    });
    NotebookActions.executed.connect((_, { notebook, cell }) => {
      const current = tracker.currentWidget;
      if (current && current.content === notebook && trackedBody(cell.model.sharedModel.getSource()) !== null) {
        model.expectChange(); // its run reaches MLflow through the journal in a moment
      }
    });
    app.commands.addCommand('mlops-magics:open-panel', {
      label: 'Show the MLOps panel', execute: () => app.shell.activateById(panel.id)
    });
    follow();
  }
};

export default plugin;
