// The render scheduler. Features change state (state.js) and call render(); a burst of
// events (a sync delivers hundreds of entries) is drawn once, 30 ms later, by the views
// app.js registered, in order. Features import render() only, never a view, so no module
// imports in a circle.

const views = [];
const fileHooks = [];
let timer = 0;

/** Adds views (functions that draw part of the page from state) to every render. */
export function registerView(...fns) {
  views.push(...fns);
}

/** Draws every view now (and cancels a pending render). */
export function renderNow() {
  clearTimeout(timer);
  timer = 0;
  for (const v of views) v();
}

/** Coalesces the renders of a burst of events. */
export function render() {
  if (!timer) timer = setTimeout(renderNow, 30);
}

/** A view that shows files: fn(root, progressOnly) runs when a file's state changes and
 * returns true when it drew the change in place (no render needed). */
export function onFileChange(fn) {
  fileHooks.push(fn);
}

/** A file's state changed: its message is drawn again (progress only: updated in place). */
export function fileChanged(root, progressOnly = false) {
  let inPlace = true;
  for (const fn of fileHooks) if (!fn(root, progressOnly)) inPlace = false;
  if (!inPlace) render();
}
