// What a fatal player error means to a viewer, in the same words on the app's Video page and in the embed player.

/** ``network``: a playlist or segment could not be fetched (``status``: its HTTP status); otherwise the media. */
export function playbackProblem(network: boolean, status?: number): string {
  if (!network) return "This video cannot be played.";
  return status !== undefined && [401, 403, 410].includes(status) ? "This link has expired." : "The video could not be loaded.";
}
