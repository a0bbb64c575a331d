#!/usr/bin/python3
"""Writes test/fixtures/embedseg-import/: a small EmbedSeg network saved as EmbedSeg's trainer saves it, and its outputs.

Run with Debian's PyTorch (apt-get install python3-torch; 1.13 here): /usr/bin/python3 scripts/make-embedseg-fixture.py

The network is EmbedSeg's BranchedERFNet (juglab/EmbedSeg, EmbedSeg/models/erfnet.py and BranchedERFNet.py; SPEC.md
"EmbedSeg") written out again with the widths as a parameter: the reference's depth (5 blocks after the second
downsampler, [2, 4, 8, 16] dilations twice after the third, 2 blocks per decoder stage), its tensor names, and the
unused encoder.output_conv it carries, at widths (3, 6, 8) instead of (16, 64, 128) so the files stay small. Every
weight and batch-norm statistic is drawn at random (not EmbedSeg's zero-initialized output layer), so all of them
shape the outputs. Files:
  model.pth            torch.save of {'epoch', 'best_iou', 'model_state_dict', 'optim_state_dict', 'logger_data'},
                       as EmbedSeg's train.py saves: the state dict of the network wrapped in DataParallel ('module.'
                       names) and an Adam state dict
  model.safetensors    the same state dict without the prefix, written in the safetensors format (F32, and I64 for
                       num_batches_tracked, as safetensors.torch.save_file writes it)
  reference.safetensors  'input' [1, 1, 64, 96] and 'output' [1, 5, 64, 96]: the network's outputs in eval mode
  tensors.pth          small tensors for the reader: a transposed view, a view with a storage offset, float16, float64,
                       int64, bool
  legacy.pth           tensors in torch.save's legacy (pre-1.6, non-ZIP) format (its storage keys are memory
                       addresses, so this file differs between runs; the others are the same every time)
  deflated.pth         tensors.pth with its entries compressed (which torch.save never does)
  other.pth            the state dict of another network (a conv, a batch norm, a conv)
"""
import json
import os
import struct
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'embedseg-import')
WIDTHS = (3, 6, 8)


class DownsamplerBlock(nn.Module):
    def __init__(self, ninput, noutput):
        super().__init__()
        self.conv = nn.Conv2d(ninput, noutput - ninput, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(noutput, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class NonBottleneck1d(nn.Module):
    def __init__(self, channels, dropprob, dilated):
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(dilated, 0), dilation=(dilated, 1))
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, dilated), dilation=(1, dilated))
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3)
        self.dropout = nn.Dropout2d(dropprob)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1x3_1(F.relu(self.conv3x1_1(x)))))
        y = self.bn2(self.conv1x3_2(F.relu(self.conv3x1_2(y))))
        if self.dropout.p != 0:
            y = self.dropout(y)
        return F.relu(y + x)


class Encoder(nn.Module):
    def __init__(self, num_classes, input_channels, widths):
        super().__init__()
        w0, w1, w2 = widths
        self.initial_block = DownsamplerBlock(input_channels, w0)
        self.layers = nn.ModuleList([DownsamplerBlock(w0, w1)])
        self.layers.extend(NonBottleneck1d(w1, 0.03, 1) for _ in range(5))
        self.layers.append(DownsamplerBlock(w1, w2))
        for _ in range(2):
            self.layers.extend(NonBottleneck1d(w2, 0.3, d) for d in (2, 4, 8, 16))
        # In the reference but used only by its encoder-only mode.
        self.output_conv = nn.Conv2d(w2, num_classes, 1)

    def forward(self, x):
        x = self.initial_block(x)
        for layer in self.layers:
            x = layer(x)
        return x


class UpsamplerBlock(nn.Module):
    def __init__(self, ninput, noutput):
        super().__init__()
        self.conv = nn.ConvTranspose2d(ninput, noutput, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(noutput, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Decoder(nn.Module):
    def __init__(self, num_classes, widths):
        super().__init__()
        w0, w1, w2 = widths
        self.layers = nn.ModuleList([UpsamplerBlock(w2, w1), NonBottleneck1d(w1, 0, 1), NonBottleneck1d(w1, 0, 1),
                                     UpsamplerBlock(w1, w0), NonBottleneck1d(w0, 0, 1), NonBottleneck1d(w0, 0, 1)])
        self.output_conv = nn.ConvTranspose2d(w0, num_classes, 2, stride=2)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.output_conv(x)


class BranchedERFNet(nn.Module):
    def __init__(self, num_classes=(4, 1), input_channels=1, widths=WIDTHS):
        super().__init__()
        self.encoder = Encoder(sum(num_classes), input_channels, widths)
        self.decoders = nn.ModuleList(Decoder(n, widths) for n in num_classes)

    def forward(self, x):
        features = self.encoder(x)
        return torch.cat([decoder(features) for decoder in self.decoders], 1)


def randomize(model, generator):
    """Random weights at PyTorch's init scale and batch-norm parameters and statistics away from their defaults."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = module.weight[0].numel() if isinstance(module, nn.Conv2d) else module.weight.shape[0] * module.weight[0, 0].numel()
                bound = 1.5 / fan_in ** 0.5
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.6, 1.4, generator=generator)
                module.bias.uniform_(-0.3, 0.3, generator=generator)
                module.running_mean.uniform_(-0.3, 0.3, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.num_batches_tracked.fill_(7)


SAFETENSORS_DTYPES = {torch.float32: 'F32', torch.int64: 'I64'}


def save_safetensors(tensors, path):
    """The safetensors format by hand (no safetensors package in Debian): header length, JSON header, raw data."""
    header, data, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.numpy().tobytes()
        header[name] = {'dtype': SAFETENSORS_DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        data.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(data))


def main():
    os.makedirs(OUT, exist_ok=True)
    generator = torch.Generator().manual_seed(2024)
    model = BranchedERFNet()
    randomize(model, generator)
    model.eval()
    image = torch.rand(1, 1, 64, 96, generator=generator)
    with torch.no_grad():
        output = model(image)
    print('outputs per channel: min', output.amin((0, 2, 3)).tolist(), 'max', output.amax((0, 2, 3)).tolist())

    wrapped = nn.DataParallel(model)
    optimizer = torch.optim.Adam(wrapped.parameters(), lr=5e-4, weight_decay=1e-4)
    state = {
        'epoch': 3,
        'best_iou': 0.25,
        'model_state_dict': wrapped.state_dict(),
        'optim_state_dict': optimizer.state_dict(),
        'logger_data': {'train': [1.5, 1.2, 1.1, 1.0], 'val': [1.4, 1.3, 1.2, 1.2], 'iou': [0.1, 0.2, 0.25, 0.2]},
    }
    torch.save(state, os.path.join(OUT, 'model.pth'))
    save_safetensors(model.state_dict(), os.path.join(OUT, 'model.safetensors'))
    save_safetensors({'input': image, 'output': output}, os.path.join(OUT, 'reference.safetensors'))

    a = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({
        'transposed': a.t(),  # [4, 3], strides (1, 4)
        'offset': a[1:, 2:],  # [2, 2], offset 6, strides (4, 1)
        'half': (a / 4).half(),
        'double': a.double() - 5.5,
        'long': torch.tensor([-3, 0, 2 ** 40]),
        'bool': torch.tensor([True, False, True]),
        'step': 12,
        'lr': 0.5,
        'name': 'embedseg',
    }, os.path.join(OUT, 'tensors.pth'))
    torch.save({'transposed': a.t(), 'double': a.double()[1]}, os.path.join(OUT, 'legacy.pth'),
               _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(os.path.join(OUT, 'tensors.pth')) as stored, \
            zipfile.ZipFile(os.path.join(OUT, 'deflated.pth'), 'w', zipfile.ZIP_DEFLATED) as deflated:
        for info in stored.infolist():
            # A fixed date, so the file is the same every time.
            entry = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            deflated.writestr(entry, stored.read(info))
    torch.manual_seed(0)
    other = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Conv2d(2, 1, 1))
    torch.save(other.state_dict(), os.path.join(OUT, 'other.pth'))
    for name in sorted(os.listdir(OUT)):
        print(f'{name}: {os.path.getsize(os.path.join(OUT, name))} bytes')


if __name__ == '__main__':
    main()
