/**
 * Real, full-size pictures for the classifier's tests and bench: a seeded family of gradients
 * with coloured noise and a few soft blobs, encoded by sharp. Unlike `images.ts` (1x1 stand-ins)
 * these decode to a whole photo-sized raster, so decoding and resizing cost what they would for
 * a generated image.
 */
import sharp from 'sharp';
import { mulberry32 } from './random.ts';

/** One picture of `side` x `side` pixels, encoded as `format`; different for every seed. */
export async function makePicture(seed: number, side: number, format: 'jpeg' | 'png' = 'jpeg'): Promise<Uint8Array> {
  const random = mulberry32(seed);
  const from = [random(), random(), random()].map((c) => c * 255);
  const to = [random(), random(), random()].map((c) => c * 255);
  const angle = random() * Math.PI * 2;
  const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
  const blobs = Array.from({ length: 3 + Math.floor(random() * 4) }, () => ({
    x: random() * side,
    y: random() * side,
    r: (0.05 + random() * 0.25) * side,
    colour: [random(), random(), random()].map((c) => c * 255),
  }));
  const noise = 10 + random() * 50;
  const data = Buffer.alloc(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const t = Math.min(1, Math.max(0, ((x - side / 2) * dx + (y - side / 2) * dy) / side + 0.5));
      const pixel = from.map((f, c) => f + (to[c]! - f) * t);
      for (const b of blobs) {
        const d2 = ((x - b.x) ** 2 + (y - b.y) ** 2) / b.r ** 2;
        if (d2 < 1) for (let c = 0; c < 3; c++) pixel[c] = pixel[c]! + (b.colour[c]! - pixel[c]!) * (1 - d2);
      }
      const i = (y * side + x) * 3;
      for (let c = 0; c < 3; c++) data[i + c] = Math.max(0, Math.min(255, pixel[c]! + (random() - 0.5) * noise));
    }
  }
  const image = sharp(data, { raw: { width: side, height: side, channels: 3 } });
  return new Uint8Array(await (format === 'png' ? image.png() : image.jpeg({ quality: 90 })).toBuffer());
}
