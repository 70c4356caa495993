// The page's URL options, for streaming. Only whitelisted values are used, and only as a colour
// (never inserted as HTML): ?bg=transparent (OBS's browser source), ?bg=#00ff00 (chroma key:
// "#" and 3 or 6 hex digits), ?panel=0 (no panel). Anything else is ignored.
export const DEFAULT_BG = "#d9ecf2";

export function readOptions(search) {
  const q = new URLSearchParams(search);
  const bg = (q.get("bg") || "").trim();
  let background = DEFAULT_BG, transparent = false;
  if (bg === "transparent") { background = "transparent"; transparent = true; }
  else if (/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(bg)) background = bg.toLowerCase();
  return { background, transparent, panel: q.get("panel") !== "0" };
}
