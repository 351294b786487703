/**
 * The sentences of the image tools (/imagine-edit and /imagine-upscale), in the shape of the
 * tables in `i18n.ts`, kept apart until they are merged there. Placeholders in braces, as there.
 */
export const en = {
  // Commands and their options (Discord metadata: descriptions at most 100 characters)
  'command.edit.description': 'Edit an image with an instruction, using Qwen-Image-Edit',
  'command.edit.option.image': 'The image to edit: PNG, JPEG or WebP, up to 10 MB and 4096 pixels a side',
  'command.edit.option.instruction': 'What to change, e.g. “make it a snowy evening”',
  'command.edit.option.seed': 'A number to repeat a result (0 to 2147483647); random when empty',
  'command.upscale.description': 'Make an image larger and sharper',
  'command.upscale.option.image': 'The image to upscale: PNG, JPEG or WebP, up to 10 MB and 4096 pixels a side',
  // The member's image, checked before anything is spent (ephemeral, nothing billed)
  'image.missing': 'Please attach the image you want me to work on.',
  'image.not_image': 'That file is not an image. Please attach a PNG, JPEG or WebP picture.',
  'image.unsupported_format': 'I can’t work with {format} images. Please attach a PNG, JPEG or WebP picture.',
  'image.too_large': 'That image is {size} MB; the limit is {limit} MB. Please attach a smaller one.',
  'image.too_many_pixels':
    'That image is {width}×{height} pixels; each side may be at most {limit}. Please attach a smaller one.',
  'image.unreadable': 'I couldn’t read that image: the file seems damaged or incomplete. Please try another one.',
  'image.download_failed': 'I couldn’t fetch your image from Discord. Please upload it again.',
  'image.download_timeout': 'Fetching your image from Discord took too long. Please try again.',
  // Progress and results
  'progress.edit_submitting': '📨 Sending your image and instruction to Qwen-Image-Edit…',
  'progress.upscale_submitting': '📨 Sending your image to the upscaler…',
  'result.edited': '🖌️ Edited as asked: {instruction}',
  'result.upscaled': '🔍 Upscaled to {width}×{height}',
  'error.edit_invalid_request':
    'The image service could not accept this image or instruction. Please try a different image or wording.',
} as const;

export type ToolMessageKey = keyof typeof en;

export const zhCN: Partial<Record<ToolMessageKey, string>> = {
  'command.edit.description': '用 Qwen-Image-Edit 按指令编辑一张图片',
  'command.edit.option.image': '要编辑的图片：PNG、JPEG 或 WebP，最大 10 MB，每边最多 4096 像素',
  'command.edit.option.instruction': '要修改的内容，例如“改成下雪的傍晚”',
  'command.edit.option.seed': '用于复现结果的数字（0 到 2147483647）；留空则随机',
  'command.upscale.description': '把图片放大并变得更清晰',
  'command.upscale.option.image': '要放大的图片：PNG、JPEG 或 WebP，最大 10 MB，每边最多 4096 像素',
  'image.missing': '请附上你想让我处理的图片。',
  'image.not_image': '这个文件不是图片。请附上 PNG、JPEG 或 WebP 格式的图片。',
  'image.unsupported_format': '我无法处理 {format} 格式的图片。请附上 PNG、JPEG 或 WebP 格式的图片。',
  'image.too_large': '这张图片有 {size} MB，上限为 {limit} MB。请附上更小的图片。',
  'image.too_many_pixels': '这张图片为 {width}×{height} 像素，每边最多 {limit} 像素。请附上更小的图片。',
  'image.unreadable': '无法读取这张图片：文件似乎已损坏或不完整。请换一张试试。',
  'image.download_failed': '无法从 Discord 获取你的图片，请重新上传。',
  'image.download_timeout': '从 Discord 获取你的图片超时，请重试。',
  'progress.edit_submitting': '📨 正在把你的图片和指令发送给 Qwen-Image-Edit…',
  'progress.upscale_submitting': '📨 正在把你的图片发送给放大服务…',
  'result.edited': '🖌️ 已按指令编辑：{instruction}',
  'result.upscaled': '🔍 已放大到 {width}×{height}',
  'error.edit_invalid_request': '图像服务无法接受这张图片或这条指令，请换一张图片或换个说法。',
};
