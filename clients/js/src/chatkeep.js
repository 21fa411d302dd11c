// chatkeep JavaScript client: a single dependency-free ES module (work in progress).
export class Chatkeep {
  constructor(baseUrl, options = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.options = options;
  }
}
