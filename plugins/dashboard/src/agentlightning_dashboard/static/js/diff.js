// Word-level diff (longest common subsequence) of two texts: [{op: "same"|"add"|"del", text}].

const MAX_TOKENS = 4000;

export function diffWords(before, after) {
  const a = tokens(before), b = tokens(after);
  if (a.length * b.length > MAX_TOKENS * MAX_TOKENS) return [{ op: "del", text: before }, { op: "add", text: after }];
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  const push = (op, text) => (out.length && out[out.length - 1].op === op ? (out[out.length - 1].text += text) : out.push({ op, text }));
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) push("same", a[i++]), j++;
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) push("del", a[i++]);
    else push("add", b[j++]);
  }
  while (i < n) push("del", a[i++]);
  while (j < m) push("add", b[j++]);
  return out;
}

function tokens(text) {
  return String(text ?? "").match(/\s+|[^\s]+/g) || [];
}
