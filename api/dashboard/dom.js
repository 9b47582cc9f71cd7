/* global document */
// The page's three DOM helpers, shared by every card module.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element with an optional class and text. */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The sentence meant for a person: a CloudExecutionError's problem `detail`, else the message. */
export const detailOf = (err) => err.detail || err.message;
