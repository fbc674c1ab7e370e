// Save text or bytes as a file: a Blob, an object URL (the CSP allows blob:) and a temporary download link.
export function downloadBlob(filename, blob) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later: some browsers read the URL after click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function downloadText(filename, text, type) {
  downloadBlob(filename, new Blob([text], { type }));
}

export function downloadBytes(filename, bytes, type) {
  downloadBlob(filename, new Blob([bytes], { type }));
}
